import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError, requestStreamPath } from './HttpError.ts';

test('a request naming an invalid stream path is a 400 saying why', () => {
  assert.equal(requestStreamPath('/live/cam1/'), 'live/cam1');
  assert.throws(
    () => requestStreamPath('live/../etc'),
    (e: unknown) =>
      e instanceof HttpError &&
      e.statusCode === 400 &&
      e.message === 'invalid stream path "live/../etc": segment ".." is not allowed',
  );
});
