import { splitArgs } from '../../src/action/args.js';

describe('splitArgs', () => {
  it('splits words on whitespace and keeps quoted text together', () => {
    expect(splitArgs('  prune   --max-size 5GB ')).toEqual(['prune', '--max-size', '5GB']);
    expect(splitArgs(`ls --key 'ab cd' --config "my dir/d.yml"`)).toEqual([
      'ls',
      '--key',
      'ab cd',
      '--config',
      'my dir/d.yml',
    ]);
    expect(splitArgs(`a"b c"d '' "x\\"y\\\\z"`)).toEqual(['ab cd', '', 'x"y\\z']);
    expect(splitArgs('')).toEqual([]);
  });

  it('says when a quote is not closed', () => {
    expect(() => splitArgs(`ls --key 'ab`)).toThrow(/input "args": a ' quote is not closed/);
  });
});
