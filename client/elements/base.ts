/**
 * What both custom elements share. `HTMLElement` does not exist where the SDK may be imported for its types or
 * rendered on a server (Node, SSR): the classes then extend a stand-in and are never defined.
 */
export const ElementBase: typeof HTMLElement =
  typeof HTMLElement === 'undefined' ? (class {} as unknown as typeof HTMLElement) : HTMLElement;

/** A `src` attribute (`https://host/live/cam1`, or relative to the page) split into server origin and path. */
export function parseStreamSource(src: string): { server: string; path: string } {
  let url: URL;
  try {
    url = new URL(src, globalThis.location?.href);
  } catch {
    throw new Error(`invalid src ${JSON.stringify(src)}: use the stream's URL, e.g. https://host/live/cam1`);
  }
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  if (!path) throw new Error(`src ${JSON.stringify(src)} names no stream: use e.g. https://host/live/cam1`);
  return { server: url.origin, path };
}

export const ELEMENT_STYLE = `
:host { display: block; position: relative; background: #000; color: #e8e8e8;
  font: 13px/1.4 system-ui, sans-serif; }
:host([hidden]) { display: none; }
video { display: block; width: 100%; height: auto; background: #000; }
.overlay { position: absolute; left: 8px; top: 8px; display: flex; gap: 6px; pointer-events: none; }
.badge { background: rgba(0,0,0,.6); padding: 2px 8px; border-radius: 4px; }
.badge[data-state="playing"], .badge[data-state="live"] { background: #c0392b; }
.error { color: #ff9b8f; margin: 4px 8px; }
.error:empty { display: none; }
dl.stats { display: grid; grid-template-columns: auto 1fr; gap: 0 12px; margin: 0; padding: 6px 8px;
  font: 12px ui-monospace, monospace; background: #111; }
dl.stats dt { color: #999; }
dl.stats dd { margin: 0; }
.chat { background: #111; padding: 6px 8px; display: flex; flex-direction: column; gap: 6px; }
.chat .messages { list-style: none; margin: 0; padding: 0; max-height: 240px; overflow-y: auto; }
.chat .messages .from, .chat .messages time { color: #999; margin-right: 6px; font-size: 12px; }
.chat .reactions { border: 0; margin: 0; padding: 0; display: flex; gap: 6px; }
.chat .compose { display: flex; gap: 6px; }
.chat .compose input { flex: 1; }
.controls { display: flex; gap: 6px; padding: 6px 8px; background: #111; }
`;
