import { longestNeedsPath, needsGraph, simulateMakespan } from '../../src/plan/simulate.js';
import type { SimItem } from '../../src/plan/simulate.js';

const item = (id: string, duration: number, needs: string[] = []): SimItem => ({
  id,
  duration,
  needs,
});

describe('simulateMakespan', () => {
  it('is 0 for no items and the largest per-worker sum for independent items', () => {
    expect(simulateMakespan([], {})).toBe(0);
    const items = [item('a', 10), item('b', 20), item('c', 5), item('d', 12)];
    expect(simulateMakespan(items, { a: 'w1', b: 'w1', c: 'w2', d: 'w2' })).toBe(30);
    expect(simulateMakespan(items, { a: 'w1', b: 'w2', c: 'w3', d: 'w4' })).toBe(20);
  });

  it('starts an item only after its needs finished on another worker', () => {
    const items = [item('a', 10), item('b', 5, ['a'])];
    expect(simulateMakespan(items, { a: 'w1', b: 'w2' })).toBe(15);
    expect(simulateMakespan(items, { a: 'w1', b: 'w1' })).toBe(15);
  });

  it('runs a ready item while another waits for its needs', () => {
    // w2: b waits for a (until 10); c is ready at 0 and runs first.
    const items = [item('a', 10), item('b', 5, ['a']), item('c', 7)];
    expect(simulateMakespan(items, { a: 'w1', b: 'w2', c: 'w2' })).toBe(15);
    // Same, but c is longer than the wait: b starts when c is done.
    const long = [item('a', 10), item('b', 5, ['a']), item('c', 12)];
    expect(simulateMakespan(long, { a: 'w1', b: 'w2', c: 'w2' })).toBe(17);
  });

  it('starts the item with the longest remaining needs-path first', () => {
    // w1 holds x (5) and y (5); z (5) on w2 needs y. y first: 10; x first: 15.
    const items = [item('x', 5), item('y', 5), item('z', 5, ['y'])];
    expect(simulateMakespan(items, { x: 'w1', y: 'w1', z: 'w2' })).toBe(10);
  });

  it('follows a diamond across workers', () => {
    const items = [
      item('base', 4),
      item('left', 6, ['base']),
      item('right', 3, ['base']),
      item('top', 2, ['left', 'right']),
    ];
    expect(simulateMakespan(items, { base: 'w1', left: 'w1', right: 'w2', top: 'w2' })).toBe(12);
    expect(simulateMakespan(items, { base: 'w1', left: 'w1', right: 'w1', top: 'w1' })).toBe(15);
  });

  it('does not depend on the order of items', () => {
    const items = [
      item('a', 3),
      item('b', 4, ['a']),
      item('c', 2),
      item('d', 6, ['c']),
      item('e', 1, ['b', 'd']),
    ];
    const assignments = { a: 'w1', b: 'w2', c: 'w1', d: 'w1', e: 'w2' };
    const expected = simulateMakespan(items, assignments);
    expect(simulateMakespan([...items].reverse(), assignments)).toBe(expected);
    expect(expected).toBe(12);
  });

  it('ignores needs outside the plan and rejects missing assignments and cycles', () => {
    expect(simulateMakespan([item('a', 5, ['elsewhere'])], { a: 'w1' })).toBe(5);
    expect(() => simulateMakespan([item('a', 5), item('b', 1)], { a: 'w1' })).toThrow(
      'item "b" has no assignment',
    );
    const cycle = [item('a', 1, ['c']), item('b', 1, ['a']), item('c', 1, ['b'])];
    expect(() => simulateMakespan(cycle, { a: 'w', b: 'w', c: 'w' })).toThrow(
      /needs cycle among: a, b, c/,
    );
  });
});

describe('needs graph helpers', () => {
  it('computes the longest duration-weighted needs path', () => {
    const items = [
      item('a', 2),
      item('b', 5, ['a']),
      item('c', 1, ['a']),
      item('d', 3, ['b', 'c']),
      item('e', 9),
    ];
    expect(longestNeedsPath(items)).toBe(10);
    expect(longestNeedsPath([])).toBe(0);
  });

  it('orders items after their needs and rejects duplicate ids', () => {
    const items = [
      item('d', 1, ['b', 'c']),
      item('c', 1, ['a']),
      item('b', 1, ['a', 'a']),
      item('a', 1),
    ];
    const graph = needsGraph(items);
    const pos = new Map(graph.order.map((i, k) => [items[i].id, k]));
    expect(pos.get('a')!).toBeLessThan(pos.get('b')!);
    expect(pos.get('b')!).toBeLessThan(pos.get('d')!);
    expect(pos.get('c')!).toBeLessThan(pos.get('d')!);
    expect(graph.deps[2]).toEqual([3]);
    expect(() => needsGraph([item('a', 1), item('a', 2)])).toThrow('duplicate item id "a"');
  });
});
