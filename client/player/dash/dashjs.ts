/** dash.js as its own bundle (web/dist/dashjs.js), imported by DashTransport only when it is used. */
export { MediaPlayer } from 'dashjs';
