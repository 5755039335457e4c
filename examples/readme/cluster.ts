import { Cluster } from 'ioredis';
import { RedisConnector, Store } from 'proxystore-redis';

// Seed nodes: the connector creates (and later closes) an ioredis Cluster.
const connector = new RedisConnector({
  nodes: [
    { host: '10.0.0.1', port: 7000 },
    { host: '10.0.0.2', port: 7000 },
  ],
  namespace: 'app',
});

// Or your own client, which the connector never closes.
const client = new Cluster([{ host: '10.0.0.1', port: 7000 }]);
const shared = new RedisConnector({ client, namespace: 'app' });

export const stores = [new Store('default', connector), new Store('other', shared)];
