// Unit tests of the console's ratings (console/ratings.js): a ticket's list and the live ratings
// make one list, each resolution once, oldest first; scores read as stars. Run with `node --test`
// in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ratings, isRating, stars } from '../../console/ratings.js';

const rating = (seq, score, comment = null) => ({
  ticket_id: 't1', resolution_seq: seq, agent_id: 'a1', score, comment, rated_at: 1_700_000_000_000 + seq,
});

test('a score is five stars, the first ones filled', () => {
  assert.equal(stars(4), '★★★★☆');
  assert.equal(stars(1), '★☆☆☆☆');
  assert.equal(stars(5), '★★★★★');
  assert.equal(stars(9), '★★★★★');
  assert.equal(stars('x'), '☆☆☆☆☆');
});

test('only whole scores from 1 to 5 on a ticket and a resolution are ratings', () => {
  assert.ok(isRating(rating(7, 4)));
  assert.ok(!isRating(rating(7, 0)));
  assert.ok(!isRating(rating(7, 6)));
  assert.ok(!isRating(rating(7, 3.5)));
  assert.ok(!isRating({ ...rating(7, 4), ticket_id: undefined }));
  assert.ok(!isRating(null));
});

test('the list and live ratings make one list, by resolution, each once', () => {
  const held = new Ratings();
  assert.ok(!held.loaded('t1'));
  // A live rating before the list: kept, and the list does not lose it.
  assert.equal(held.add(rating(12, 2)), true);
  assert.ok(!held.loaded('t1'), 'one live rating is not the whole list');
  held.listed('t1', [rating(5, 4, 'خیلی ممنون'), rating(12, 2)]);
  assert.ok(held.loaded('t1'));
  assert.deepEqual(held.of('t1').map((r) => [r.resolution_seq, r.score]), [[5, 4], [12, 2]]);
  // The same rating again (after a reconnect) is not new.
  assert.equal(held.add(rating(12, 2)), false);
  assert.equal(held.add(rating(20, 5)), true);
  assert.deepEqual(held.of('t1').map((r) => r.resolution_seq), [5, 12, 20]);
  // Another ticket's rating in a list is not taken.
  held.listed('t2', [rating(3, 3)]);
  assert.deepEqual(held.of('t2'), []);
  held.forget('t1');
  assert.deepEqual(held.of('t1'), []);
  assert.ok(!held.loaded('t1'));
});
