/** hls.js as its own bundle (web/dist/hlsjs.js), imported by HlsTransport only when it is used. */
export { default } from 'hls.js';
