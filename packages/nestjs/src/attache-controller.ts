// The controller serving API.md §2 under `<path>`: one catch-all route whose
// requests core's handler routes (so unknown paths and wrong methods answer
// attache's 404/405, not Nest's).
import type { ServerResponse } from 'node:http';
import { All, Controller, Inject, Req, Res, type Type } from '@nestjs/common';
import { AttacheHttp, ROUTE_PARAMETER, type ExpressRequest } from './attache-http.js';

/** A controller class mounted at `path` (Nest fixes controller paths when the module is defined). */
export function createAttacheController(path: string): Type<unknown> {
  @Controller(path)
  class AttacheController {
    constructor(@Inject(AttacheHttp) private readonly http: AttacheHttp) {}

    // `''` answers the mount path itself (404 from core), `{*…}` everything below it.
    @All(['', `{*${ROUTE_PARAMETER}}`])
    serve(@Req() request: ExpressRequest, @Res() response: ServerResponse): Promise<void> {
      return this.http.serve(request, response);
    }
  }
  return AttacheController;
}
