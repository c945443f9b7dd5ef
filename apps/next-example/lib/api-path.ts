/** Where the API is mounted: the route handler lives at `app/v1/[...path]/route.ts`. */
export const API_BASE_PATH = '/v1';
