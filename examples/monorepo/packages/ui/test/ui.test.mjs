// Tests of @mono/ui, run against the compiled modules in out/ui.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bar, histogramChart, sparkline } from '../../../out/ui/chart.mjs';
import {
  displayWidth,
  formatBytes,
  formatNumber,
  formatSignificant,
  pad,
  truncate,
} from '../../../out/ui/format.mjs';
import { renderTable } from '../../../out/ui/table.mjs';

describe('format', () => {
  it('formats numbers with thousands separators', () => {
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(999), '999');
    assert.equal(formatNumber(1000), '1,000');
    assert.equal(formatNumber(1234567.891, 2), '1,234,567.89');
    assert.equal(formatNumber(-1234.5, 1), '-1,234.5');
    assert.equal(formatNumber(-0.0001, 2), '0.00');
    assert.equal(formatNumber(NaN), 'NaN');
  });

  it('formats significant digits and byte counts', () => {
    assert.equal(formatSignificant(211.99999999999991), '212');
    assert.equal(formatSignificant(1.609344), '1.60934');
    assert.equal(formatSignificant(0.0254, 10), '0.0254');
    assert.equal(formatSignificant(1000), '1,000');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
  });

  it('pads and truncates by code point', () => {
    assert.equal(displayWidth('héllo'), 5);
    assert.equal(pad('ab', 4), 'ab  ');
    assert.equal(pad('ab', 4, 'right'), '  ab');
    assert.equal(truncate('abcdef', 4), 'abc…');
    assert.equal(truncate('abc', 4), 'abc');
  });
});

describe('table', () => {
  it('renders a box-drawn table', () => {
    const table = renderTable(
      [{ title: 'name' }, { title: 'count', align: 'right' }],
      [
        ['apples', '3'],
        ['kiwis', '12'],
      ],
    );
    assert.equal(
      table,
      [
        '┌────────┬───────┐',
        '│ name   │ count │',
        '├────────┼───────┤',
        '│ apples │     3 │',
        '│ kiwis  │    12 │',
        '└────────┴───────┘',
        '',
      ].join('\n'),
    );
  });
});

describe('chart', () => {
  it('draws sparklines and bars', () => {
    assert.equal(sparkline([1, 2, 3, 4, 5, 6, 7, 8]), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([5, 5, 5]), '▄▄▄');
    assert.equal(sparkline([]), '');
    assert.equal(bar(10, 10, 4), '████');
    assert.equal(bar(5, 10, 3), '█▌');
    assert.equal(bar(0, 10, 3), '');
  });

  it('draws a histogram with one line per bin', () => {
    const chart = histogramChart([1, 1, 2, 3, 3, 3], 2, 6, 0);
    assert.equal(chart, '1 ███    2\n2 ██████ 4\n');
  });
});
