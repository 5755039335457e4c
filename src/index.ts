/**
 * proxystore-redis: pass large objects between Node processes by reference
 * through Redis, with ProxyStore's ephemeral proxies, lifetimes and
 * ownership kept in Redis and changed only by atomic Lua scripts.
 *
 * @groupDescription Store
 * A {@link Store} puts, gets and proxies objects through a {@link RedisConnector}; stores are
 * registered by name so that refs can be resolved in any process. What a value becomes in
 * Redis: [What survives a round trip](../docs/serialization.md).
 *
 * @groupDescription Proxies
 * A proxy stands for an object in Redis and is resolved on first use; its ref
 * ({@link toRef}, {@link fromRef}) is what travels between processes.
 *
 * @groupDescription Lifetimes
 * Objects evicted when their lifetime ends: {@link ContextLifetime}, {@link LeaseLifetime},
 * {@link StaticLifetime}. The guide: [Object lifetimes](../docs/lifetimes.md).
 *
 * @groupDescription Ownership
 * One owner per object, shared or mutable borrows, all checked in Redis. The guide:
 * [Ownership and borrowing](../docs/ownership.md).
 *
 * @groupDescription Futures
 * A {@link Future} is a value one process sets later and others wait for, in any process,
 * blocked in Redis (never polling). The guide: [Futures](../docs/futures.md).
 *
 * @groupDescription Errors
 * Every error extends {@link ProxyStoreError} and names the key or lifetime involved.
 *
 * @groupDescription CLI and configuration
 * How a process without a store of its own builds one (environment variables,
 * {@link StoreConfig}), the command line (`npx proxystore-redis`), and Redis security.
 *
 * @packageDocumentation
 */
export {
  ProxyStoreError,
  ProxyResolveMissingKeyError,
  NonProxiableTypeError,
  ProxyStoreFactoryError,
  StoreExistsError,
  StoreClosedError,
  SerializationError,
  ProxyNotResolvedError,
  LifetimeEndedError,
  FutureAlreadySetError,
  FutureTimeoutError,
  MutableBorrowError,
  ReferenceNotOwnedError,
  ReferenceInvalidError,
  AlreadyOwnedError,
  BorrowedError,
  InvalidOptionsError,
  InvalidRefError,
  RedisOperationError,
  ClusterReconfiguringError,
  RedisDataLostError,
  DurabilityError,
  type ProxyStoreErrorJSON,
  type ErrorContext,
  type ConsumedBy,
} from './errors.js';
export {
  RedisConnector,
  type RedisConnectorOptions,
  type RedisConnectorConfig,
  type DurabilityOptions,
  type ClusterNode,
  type FromConfigOptions,
} from './redis/connector.js';
export { ENV_PASSWORD } from './redis/config.js';
export {
  Store,
  ENV_URL,
  ENV_NAMESPACE,
  type StoreOptions,
  type StoreConfig,
  type StoreFromConfigOptions,
  type PutOptions,
  type PutStreamOptions,
  type ObjectRuleOptions,
  type GetOptions,
  type ProxyOptions,
  type ProxyFromKeyOptions,
  type ProxyOf,
  type NonProxiable,
} from './store.js';
export { registerStore, getStore, unregisterStore } from './registry.js';
export { type StoreMetrics, type OperationMetrics } from './metrics.js';
export { isProxy, isResolved, resolve, extract, getKey, type Proxy, type ProxyKind, type TargetSource, type ResolveOptions } from './proxy/proxy.js';
export { toRef, fromRef, proxyReviver, validateRef, REF_MARKER, PROXY_EXTENSION_TYPE, type ProxyRef } from './proxy/refs.js';
export { ProxyLocker } from './proxy/locker.js';
export {
  Future,
  isFuture,
  FUTURE_EXTENSION_TYPE,
  type FutureOptions,
  type FutureResultOptions,
  type FutureRef,
} from './future/future.js';
export { type Lifetime, type AddKeyOptions, type AddKeyArgs, type CloseOptions } from './lifetimes/lifetime.js';
export { ContextLifetime, type LifetimeOptions } from './lifetimes/context.js';
export { LeaseLifetime, type LeaseLifetimeOptions, type Expiry } from './lifetimes/lease.js';
export { StaticLifetime, type StaticLifetimeOptions, type StaticSignals } from './lifetimes/static.js';
export {
  isOwnedProxy,
  isRefProxy,
  isRefMutProxy,
  isValid,
  type OwnedProxy,
  type RefProxy,
  type RefMutProxy,
} from './ownership/handle.js';
export { type OwnedProxyOptions, type OwnedProxyOf } from './ownership/owned.js';
export { borrow, mutBorrow, release, type BorrowOptions } from './ownership/borrow.js';
export { drop, clone, intoOwned, update, type IntoOwnedOptions, type UpdateOptions } from './ownership/ops.js';
export { submit, type SubmitOptions } from './ownership/scopes.js';
export { type Serializer, type Deserializer, type Shape, type TypedArrayName } from './serialize.js';
export { type ConsumeReply } from './redis/scripts.js';
