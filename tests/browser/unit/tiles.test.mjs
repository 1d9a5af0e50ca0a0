// The meeting grid's layout: the biggest tiles that fit, never stretched into strips.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fitTiles } from '../../../assets/js/ui/tiles.js';

test('tiles: one to six people on a laptop screen fill it without overflowing', () => {
  const [width, height, gap] = [1248, 640, 10];
  let previous = Infinity;
  for (let count = 1; count <= 6; count++) {
    const fit = fitTiles(count, width, height, gap);
    const rows = Math.ceil(count / fit.cols);
    assert.ok(fit.cols * fit.width + (fit.cols - 1) * gap <= width, `${count}: fits across`);
    assert.ok(rows * fit.height + (rows - 1) * gap <= height, `${count}: fits down`);
    const ratio = fit.width / fit.height;
    assert.ok(ratio >= 4 / 3 - 0.01 && ratio <= 16 / 9 + 0.01, `${count}: ratio ${ratio}`);
    assert.ok(fit.width * fit.height <= previous, `${count}: more people, smaller tiles`);
    previous = fit.width * fit.height;
  }
  assert.equal(fitTiles(2, width, height, gap).cols, 2, 'two people side by side');
  assert.equal(fitTiles(6, width, height, gap).cols, 3, 'six in three columns');
});

test('tiles: a phone in portrait stacks two people and allows taller tiles', () => {
  const two = fitTiles(2, 370, 620, 8);
  assert.equal(two.cols, 1);
  const one = fitTiles(1, 370, 620, 8);
  assert.ok(one.height > one.width, 'a lone tile may be portrait on a portrait screen');
  const six = fitTiles(6, 370, 620, 8);
  assert.equal(six.cols, 2);
});

test('tiles: a zero-sized area (hidden page) gives no size rather than nonsense', () => {
  assert.deepEqual(fitTiles(3, 0, 0), { width: 0, height: 0, cols: 1 });
});
