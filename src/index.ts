/**
 * proxystore-redis: pass large objects between Node processes by reference
 * through Redis, with ProxyStore's ephemeral proxies, lifetimes and
 * ownership kept in Redis and changed only by atomic Lua scripts.
 *
 * @packageDocumentation
 */
export {
  ProxyStoreError,
  ProxyResolveMissingKeyError,
  NonProxiableTypeError,
  ProxyStoreFactoryError,
  StoreExistsError,
  SerializationError,
  ProxyNotResolvedError,
  LifetimeEndedError,
  MutableBorrowError,
  ReferenceNotOwnedError,
  ReferenceInvalidError,
  AlreadyOwnedError,
  BorrowedError,
  InvalidOptionsError,
  InvalidRefError,
  RedisOperationError,
  type ProxyStoreErrorJSON,
} from './errors.js';
export { RedisConnector, type RedisConnectorOptions, type RedisConnectorConfig } from './redis/connector.js';
export {
  Store,
  ENV_URL,
  ENV_NAMESPACE,
  type StoreOptions,
  type StoreConfig,
  type PutOptions,
  type GetOptions,
  type ProxyOptions,
  type ProxyFromKeyOptions,
  type ProxyOf,
} from './store.js';
export { registerStore, getStore, unregisterStore } from './registry.js';
export { isProxy, isResolved, resolve, extract, getKey, type Proxy, type ProxyKind } from './proxy/proxy.js';
export { toRef, fromRef, proxyReviver, validateRef, REF_MARKER, PROXY_EXTENSION_TYPE, type ProxyRef } from './proxy/refs.js';
export { ProxyLocker } from './proxy/locker.js';
export { type Lifetime, type AddKeyOptions, type AddKeyArgs, type CloseOptions } from './lifetimes/lifetime.js';
export { ContextLifetime, type LifetimeOptions } from './lifetimes/context.js';
export { LeaseLifetime, type LeaseLifetimeOptions, type Expiry } from './lifetimes/lease.js';
export { StaticLifetime } from './lifetimes/static.js';
export { type Serializer, type Deserializer, type Shape } from './serialize.js';
