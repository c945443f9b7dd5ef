import type { Metadata } from 'next';
import type { ReactNode } from 'react';

export const metadata: Metadata = {
  title: 'attache on Next.js',
  description: 'Stage files under a lease, then commit or discard them together.',
  icons: { icon: '/icon.svg' },
};

// Next.js finds the root layout by its default export (the repository's
// no-default-exports rule gives way to the framework's file conventions).
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <head>
        <link rel="stylesheet" href="/styles.css" />
      </head>
      <body>{children}</body>
    </html>
  );
}
