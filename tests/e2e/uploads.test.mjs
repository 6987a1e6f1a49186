// Unit tests of the files an agent attaches to a reply (console/uploads.js) and of how they are
// described (sizes, refusals; console/attachments.js, console/i18n.js). Run with `node --test` in
// tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Draft, MAX_BYTES, MAX_FILES, PARALLEL, discard, fetchBlob, upload } from '../../console/uploads.js';
import { uploadErrorText } from '../../console/attachments.js';
import { fileSize, setLanguage } from '../../console/i18n.js';
import fa from '../../console/lang-fa.js';
import en from '../../console/lang-en.js';

const file = (name, size) => ({ name, size });
const stored = (id, name = 'a.png', size = 10) => ({ id, state: 'stored', name, length: size, size, kind: 'image', media_type: 'image/png' });

test('a file over 10 MiB or empty is refused here and never uploaded', () => {
  const d = new Draft();
  assert.equal(d.add(file('big.pdf', MAX_BYTES + 1)).error, 'too_large');
  assert.equal(d.add(file('empty.txt', 0)).error, 'empty_file');
  const ok = d.add(file('exact.pdf', MAX_BYTES));
  assert.equal(ok.state, 'waiting');
  assert.deepEqual(d.start(), [ok], 'only the acceptable file starts');
});

test('at most 10 files per message; refused files do not count', () => {
  const d = new Draft();
  d.add(file('big.pdf', MAX_BYTES + 1));
  for (let i = 0; i < MAX_FILES; i++) assert.equal(d.add(file(`f${i}.txt`, 5)).state, 'waiting');
  const eleventh = d.add(file('f10.txt', 5));
  assert.equal(eleventh.state, 'failed');
  assert.equal(eleventh.error, 'too_many');
  assert.equal(d.counted(), MAX_FILES);
  // Removing one makes room again.
  d.remove(d.items[1].key);
  assert.equal(d.add(file('again.txt', 5)).state, 'waiting');
});

test('uploads run a few at a time; each one that ends lets the next start', () => {
  const d = new Draft();
  const items = Array.from({ length: PARALLEL + 2 }, (_, i) => d.add(file(`f${i}.txt`, 5)));
  const first = d.start();
  assert.equal(first.length, PARALLEL);
  assert.ok(first.every((i) => i.state === 'uploading'));
  assert.deepEqual(d.start(), [], 'none more while all slots are taken');
  d.stored(first[0].key, stored('id-0'));
  d.failed(first[1].key, 'unsupported_media');
  assert.deepEqual(d.start(), items.slice(PARALLEL), 'the waiting ones take the freed slots');
});

test('Send waits for every upload, then takes text, files, or both', () => {
  const d = new Draft();
  assert.equal(d.sendable(''), false);
  assert.equal(d.sendable('  '), false);
  assert.equal(d.sendable('hi'), true);
  const a = d.add(file('a.png', 10));
  assert.equal(d.sendable('hi'), false, 'a file is waiting');
  d.start();
  d.progress(a.key, 4);
  assert.equal(a.sent, 4);
  assert.equal(d.sendable('hi'), false, 'a file is uploading');
  d.stored(a.key, stored('id-a'));
  assert.equal(d.sendable(''), true, 'a stored file alone is a message');
  const b = d.add(file('b.html.png', 10));
  d.start();
  d.failed(b.key, 'unsupported_media');
  assert.equal(d.sendable(''), true, 'a refused file does not hold the message back');
  assert.deepEqual(d.attachments().map((x) => x.id), ['id-a']);
});

test('late answers for a removed or finished file change nothing', () => {
  const d = new Draft();
  const a = d.add(file('a.png', 10));
  d.start();
  d.remove(a.key);
  assert.equal(d.stored(a.key, stored('id-a')), false);
  assert.deepEqual(d.attachments(), []);
  const b = d.add(file('b.png', 10));
  d.start();
  d.stored(b.key, stored('id-b'));
  assert.equal(d.failed(b.key, 'aborted'), false, 'a stored file stays stored');
  d.progress(b.key, 1);
  assert.equal(b.sent, 10);
});

test('a failed message puts its files back as stored uploads, once each', () => {
  const d = new Draft();
  d.putBack([{ id: 'id-1', name: 'x.txt', size: 3 }]);
  d.putBack([{ id: 'id-1', name: 'x.txt', size: 3 }, { id: 'id-2', name: 'y.txt', size: 4 }]);
  assert.deepEqual(d.attachments().map((a) => a.id), ['id-1', 'id-2']);
  assert.equal(d.sendable(''), true);
  d.clear();
  assert.equal(d.items.length, 0);
});

/** A stand-in for XMLHttpRequest that records the request and answers as told. */
function fakeXhr(answer) {
  const made = [];
  class Fake {
    constructor() {
      this.upload = {};
      this.headers = {};
      made.push(this);
    }
    open(method, url) {
      Object.assign(this, { method, url });
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send(body) {
      this.body = body;
      queueMicrotask(() => answer(this));
    }
    abort() {
      this.onabort();
    }
  }
  return { Fake, made };
}

test('an upload is one POST with the name in the query and the token in a header, with progress', async () => {
  const seen = [];
  const { Fake, made } = fakeXhr((x) => {
    x.upload.onprogress({ loaded: 5 });
    x.upload.onprogress({ loaded: 11 });
    x.status = 201;
    x.responseText = JSON.stringify({ attachment: stored('id-1', 'گزارش خرید.png', 11) });
    x.onload();
  });
  const f = { name: 'گزارش خرید.png', size: 11 };
  const a = await upload(f, { token: 'agt_secret', onProgress: (n) => seen.push(n), XHR: Fake }).promise;
  assert.equal(a.id, 'id-1');
  assert.deepEqual(seen, [5, 11]);
  const x = made[0];
  assert.equal(x.method, 'POST');
  assert.equal(x.url, `/v1/attachments?name=${encodeURIComponent('گزارش خرید.png')}`);
  assert.ok(!x.url.includes('agt_'), 'the token never goes in a URL');
  assert.equal(x.headers.authorization, 'Bearer agt_secret');
  assert.equal(x.body, f, 'the file itself is the body');
});

test('a refused upload rejects with the hub’s code, or one from the status without a body', async () => {
  const refuse = (status, body) =>
    upload(file('x.png', 3), {
      token: 't',
      XHR: fakeXhr((x) => {
        x.status = status;
        x.responseText = body;
        x.onload();
      }).Fake,
    }).promise.then(
      () => assert.fail('accepted'),
      (e) => e,
    );
  const e = await refuse(415, JSON.stringify({ error: { code: 'unsupported_media', message: 'not accepted' } }));
  assert.equal(e.code, 'unsupported_media');
  const limit = await refuse(429, JSON.stringify({ error: { code: 'upload_limit', message: 'm', retry_after_ms: 3000 } }));
  assert.equal(limit.code, 'upload_limit');
  assert.equal(limit.retryAfterMs, 3000);
  assert.equal((await refuse(413, '<html>proxy</html>')).code, 'too_large');
  assert.equal((await refuse(502, '')).code, 'unavailable');
  assert.equal((await refuse(200, '{}')).code, 'unavailable', 'an answer without an attachment is no success');
});

test('a network failure and a stop are told apart', async () => {
  const failing = upload(file('x.png', 3), { token: 't', XHR: fakeXhr((x) => x.onerror()).Fake });
  assert.equal((await failing.promise.catch((e) => e)).code, 'disconnected');
  const { Fake } = fakeXhr(() => {});
  const stopped = upload(file('x.png', 3), { token: 't', XHR: Fake });
  stopped.abort();
  assert.equal((await stopped.promise.catch((e) => e)).code, 'aborted');
});

test('attachments are fetched with the token in a header, and only from attachment routes', async () => {
  const calls = [];
  const fetcher = async (url, init) => {
    calls.push([url, init]);
    return { ok: true, blob: async () => 'bytes' };
  };
  const id = '0190a1b2-0000-7000-8000-000000000001';
  assert.equal(await fetchBlob(`/v1/attachments/${id}/thumbnail`, 'agt_x', fetcher), 'bytes');
  assert.equal(calls[0][1].headers.authorization, 'Bearer agt_x');
  for (const bad of ['https://evil.example/v1/attachments/' + id, `/v1/attachments/${id}?x`, '/v1/me', null]) {
    await assert.rejects(fetchBlob(bad, 'agt_x', fetcher), { code: 'not_found' });
  }
  assert.equal(calls.length, 1, 'the token went nowhere else');
  const missing = async () => ({ ok: false, status: 404, json: async () => ({ error: { code: 'not_found' } }) });
  await assert.rejects(fetchBlob(`/v1/attachments/${id}`, 't', missing), { code: 'not_found' });
  const offline = async () => {
    throw new TypeError('network');
  };
  await assert.rejects(fetchBlob(`/v1/attachments/${id}`, 't', offline), { code: 'disconnected' });
});

test('a removed upload is forgotten on the hub with a tus termination, best effort', async () => {
  const calls = [];
  await discard('id-1', 'agt_x', async (url, init) => calls.push([url, init]));
  assert.equal(calls[0][0], '/v1/uploads/id-1');
  assert.equal(calls[0][1].method, 'DELETE');
  assert.equal(calls[0][1].headers['tus-resumable'], '1.0.0');
  await discard('id-1', 'agt_x', async () => {
    throw new TypeError('offline');
  });
});

test('sizes in Persian digits and words, and in English', () => {
  setLanguage('fa');
  assert.equal(fileSize(812), '۸۱۲ بایت');
  assert.equal(fileSize(1536), '۱٫۵ کیلوبایت');
  assert.equal(fileSize(MAX_BYTES), '۱۰ مگابایت');
  setLanguage('en');
  assert.equal(fileSize(812), '812 bytes');
  assert.equal(fileSize(1536), '1.5 KB');
  assert.equal(fileSize(3.25 * 1024 * 1024), '3.3 MB');
});

test('every refusal of a file has its own sentence in both languages', () => {
  const codes = ['unsupported_media', 'too_large', 'bad_image', 'upload_limit', 'not_found', 'wrong_state', 'unavailable', 'disconnected', 'unauthorized', 'too_many', 'empty_file'];
  for (const code of codes) {
    assert.ok(`attach.error.${code}` in fa && `attach.error.${code}` in en, `no words for ${code}`);
  }
  setLanguage('fa');
  assert.equal(uploadErrorText('unsupported_media'), fa['attach.error.unsupported_media']);
  assert.equal(uploadErrorText('too_large'), 'حجم این فایل بیش از ۱۰ مگابایت است.');
  assert.equal(uploadErrorText('too_many'), 'هر پیام حداکثر ۱۰ فایل می‌تواند داشته باشد.');
  assert.equal(uploadErrorText('internal'), fa['error.internal'], 'other codes fall back to the hub’s error words');
  setLanguage('en');
  assert.equal(uploadErrorText('too_large'), 'This file is larger than 10 MB.');
});
