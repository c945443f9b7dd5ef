export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Media types a browser shows inline safely (the server serves them `inline` too). */
export function isPreviewableImage(contentType: string): boolean {
  return /^image\/(png|jpeg|gif|webp|avif)(;|$)/.test(contentType);
}
