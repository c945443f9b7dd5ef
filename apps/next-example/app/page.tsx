import { readConfig } from '../lib/config';
import { Uploader } from './uploader';

// Rendered per request: the limit comes from the server's environment at run
// time, not from the build machine's.
export const dynamic = 'force-dynamic';

// Next.js finds a page by its default export.
export default function HomePage() {
  const { maxBytes } = readConfig();
  return (
    <main>
      <h1>attache on Next.js</h1>
      <p className="lede">
        Files you pick are <em>staged</em> under a lease on a key: only the lease sees them. <strong>Commit</strong> makes the
        whole batch visible at once; <strong>Discard</strong> (or letting the lease expire) leaves nothing behind. The API is
        served by this same app under <code>/v1</code>.
      </p>
      <Uploader maxBytes={maxBytes} />
    </main>
  );
}
