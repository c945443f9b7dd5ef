// The shared in-app upload specification on NestJS: AttacheFileInterceptor
// in an app controller.
import type { Attachment } from '@attache/core';
import { describeInAppUploads } from '@attache/testing';
import { Controller, Module, Post, UseInterceptors } from '@nestjs/common';
import { AttacheFileInterceptor, AttacheModule, UploadedAttachment } from '../src/index.js';
import { startApp } from './helpers.js';

describeInAppUploads('nestjs (AttacheFileInterceptor)', async ({ store, field, maxBytes }) => {
  @Controller()
  class UploadController {
    @Post('upload')
    @UseInterceptors(AttacheFileInterceptor({ field, maxBytes }))
    upload(@UploadedAttachment() attachment: Attachment): { id: string } {
      return { id: attachment.id };
    }
  }
  @Module({ imports: [AttacheModule.forRoot({ store, path: false })], controllers: [UploadController] })
  class UploadModule {}
  const app = await startApp(UploadModule);
  return { uploadUrl: `${app.origin}/upload`, close: () => app.close() };
});
