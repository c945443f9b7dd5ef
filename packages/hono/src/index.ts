export { attacheApp, attacheRoutes, type AttacheAppOptions, type AttacheRoutesOptions } from './routes.js';
