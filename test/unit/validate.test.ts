import { InvalidInputError, validateAgentAddress, validateSessionId, validateUserName, validateWorkspacePath } from '../../lib/validate';

/** Prefixes each [input, expected] case with a test title that stays short for long inputs. */
function titled(cases: [string, string][]): [string, string, string][] {
  const title = (s: string) => (s.length > 40 ? `${JSON.stringify(s.slice(0, 12))}… (${s.length} units)` : JSON.stringify(s));
  return cases.map(([input, expected]) => [title(input), input, expected]);
}

function errorOf(f: () => unknown): InvalidInputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return e as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError');
}

describe('validateUserName', () => {
  const accepted: [string, string][] = [
    ['alice', 'alice'],
    ['Alice Smith', 'Alice Smith'],
    ['  padded  ', '  padded  '],
    ['Zoë', 'Zoë'],
    ['山田', '山田'],
    ['🦄', '🦄'],
    ['a'.repeat(128), 'a'.repeat(128)],
    ['🦄'.repeat(128), '🦄'.repeat(128)],
    ['Zoe\u0308', 'Zoë'], // NFD in, NFC out
    ['a\\b:c@d%2F', 'a\\b:c@d%2F'],
  ];
  it.each(titled(accepted))('accepts %s', (_title, input, expected) => {
    expect(validateUserName(input)).toBe(expected);
  });

  const rejected: [string, string][] = [
    ['', 'user name must be 1 to 128 characters, got 0'],
    ['a'.repeat(129), 'user name must be 1 to 128 characters, got 129'],
    ['🦄'.repeat(129), 'user name must be 1 to 128 characters, got 129'],
    ['al\nice', 'user name contains a control character (U+000A) at position 2'],
    ['\u0000', 'user name contains a control character (U+0000) at position 0'],
    ['🦄\u007f', 'user name contains a control character (U+007F) at position 1'],
    ['x\u0085', 'user name contains a control character (U+0085) at position 1'],
    ['bad\ud800', 'user name contains an unpaired surrogate (U+D800) at position 3'],
    ['team/alice', "user name contains '/' at position 4"],
    [' \t', 'user name contains a control character (U+0009) at position 1'],
    ['   ', 'user name must not be only whitespace'],
    ['\u3000\u00a0', 'user name must not be only whitespace'],
  ];
  it.each(titled(rejected))('rejects %s', (_title, input, message) => {
    const error = errorOf(() => validateUserName(input));
    expect(error.field).toBe('user');
    expect(error.message).toBe(message);
  });
});

describe('validateWorkspacePath', () => {
  const accepted = ['/home/alice/src', '/a', '/home/zoë/项目', '/x/.hidden/..dots/...', `/${'a'.repeat(4095)}`];
  it.each(titled(accepted.map((p) => [p, p])))('accepts %s', (_title, input, expected) => {
    expect(validateWorkspacePath(input)).toBe(expected);
  });

  const rejected: [string, string][] = [
    ['', 'workspace path must be absolute (start with \'/\'), got ""'],
    ['src/app', 'workspace path must be absolute (start with \'/\'), got "src/app"'],
    ['/', 'workspace path must not be the root directory'],
    ['/home/', 'workspace path must not end with \'/\', got "/home/"'],
    ['/home//alice', 'workspace path must not contain \'//\', got "/home//alice"'],
    ['/home/./alice', 'workspace path must not contain a \'.\' segment, got "/home/./alice"'],
    ['/home/alice/..', 'workspace path must not contain a \'..\' segment, got "/home/alice/.."'],
    ['/home/al\u0000ice', 'workspace path contains a control character (U+0000) at position 8'],
    ['/tmp/\u009b', 'workspace path contains a control character (U+009B) at position 5'],
    [`/${'a'.repeat(4096)}`, 'workspace path must be at most 4096 bytes, got 4097'],
    [`/${'é'.repeat(2048)}`, 'workspace path must be at most 4096 bytes, got 4097'],
  ];
  it.each(titled(rejected))('rejects %s', (_title, input, message) => {
    const error = errorOf(() => validateWorkspacePath(input));
    expect(error.field).toBe('workspace');
    expect(error.message).toBe(message);
  });
});

describe('validateSessionId', () => {
  it('accepts a lowercase v4 UUID', () => {
    const id = crypto.randomUUID();
    expect(validateSessionId(id)).toBe(id);
  });

  it.each([
    '',
    'session-1',
    '3F2504E0-4F89-41D3-9A0C-0305E82C3301', // upper case
    '3f2504e0-4f89-11d3-9a0c-0305e82c3301', // v1
    '3f2504e0-4f89-41d3-7a0c-0305e82c3301', // wrong variant
    '3f2504e04f8941d39a0c0305e82c3301',
    ' 3f2504e0-4f89-41d3-9a0c-0305e82c3301',
  ])('rejects %j', (input) => {
    const error = errorOf(() => validateSessionId(input));
    expect(error.field).toBe('sessionId');
    expect(error.message).toBe(`session id must be a lowercase UUID v4, got ${JSON.stringify(input)}`);
  });

  it('truncates long values in its message', () => {
    expect(errorOf(() => validateSessionId('x'.repeat(1000))).message).toBe(`session id must be a lowercase UUID v4, got "${'x'.repeat(64)}"…`);
  });
});

describe('validateAgentAddress', () => {
  test.each(['127.0.0.1:9443', 'agent.alice-rbs-1a2b.svc:9443', '[::1]:9443', 'localhost:1'])('accepts %s', (address) => {
    expect(validateAgentAddress(address)).toBe(address);
  });
  test.each(['', '127.0.0.1', ':9443', 'host:port', 'a b:1', 'host:9443\n', `${'a'.repeat(254)}:1`, 'host:123456', '[::1:9443', 'x'.repeat(1 << 20)])(
    'refuses %j, naming the field',
    (address) => {
      expect(() => validateAgentAddress(address)).toThrow(InvalidInputError);
      expect(() => validateAgentAddress(address)).toThrow(/unreachable agent address must be host:port, got /);
    },
  );
});
