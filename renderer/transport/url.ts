/**
 * The browser-mode page is opened as http://127.0.0.1:PORT/?token=…; its API socket is the same host and
 * port at /api, with the same token.
 */

/** The parts of `window.location` this file reads. */
export interface PageLocation {
  protocol: string;
  host: string;
  search: string;
}

/** The WebSocket address of the server that served `page` (by default, this page). */
export function webSocketUrl(
  page: PageLocation | undefined = (globalThis as { location?: PageLocation }).location,
): string {
  if (!page) throw new Error('no page location: browser mode runs in a browser tab');
  const token = new URLSearchParams(page.search).get('token');
  if (!token) {
    throw new Error(
      'this page was opened without its token: open the full address `rankwise serve` printed (…/?token=…)',
    );
  }
  const scheme = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${page.host}/api?token=${encodeURIComponent(token)}`;
}
