import { serveRequests } from '../worker-kit.js';
import { type CacheRequest, runCache } from './run.js';

serveRequests<CacheRequest>(runCache);
