import { parseServerArgs } from '../../services/proxy/startup';

/** What Bazel 4.2.3 passed to `<--server_javabase>/bin/java` for `bazel info` (captured, verbatim). */
const CAPTURED = [
  '-XX:+HeapDumpOnOutOfMemoryError',
  '-XX:HeapDumpPath=/tmp/cap/ob',
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '-Xverify:none',
  '-Djava.util.logging.config.file=/tmp/cap/ob/javalog.properties',
  '-Dcom.google.devtools.build.lib.util.LogHandlerQuerier.class=com.google.devtools.build.lib.util.SimpleLogHandler$HandlerQuerier',
  '-XX:-MaxFDLimit',
  '-Djava.library.path=/usr/share/bazel/',
  '-Dfile.encoding=ISO-8859-1',
  '-jar',
  '/usr/share/bazel/A-server.jar',
  '--max_idle_secs=10800',
  '--noshutdown_on_low_sys_mem',
  '--connect_timeout_secs=30',
  '--output_user_root=/root/.cache/bazel/_bazel_root',
  '--install_base=/usr/share/bazel',
  '--install_md5=ee2c1e5edec0411c397a6dd23934bee7',
  '--output_base=/tmp/cap/ob',
  '--workspace_directory=/tmp/cap/ws',
  '--default_system_javabase=/usr/lib/jvm/java-17-openjdk-amd64',
  '--failure_detail_out=/tmp/cap/ob/failure_detail.rawproto',
  '--expand_configs_in_place',
  '--idle_server_tasks',
  '--write_command_log',
  '--nowatchfs',
  '--nofatal_event_bus_exceptions',
  '--nowindows_enable_symlinks',
  '--client_debug=false',
  '--server_javabase=/tmp/cap/jb',
  '--product_name=Bazel',
  '--noincompatible_enable_execution_transition',
  '--option_sources=install_Ubase:/etc/bazel/bazelrc:output_Ubase::server_Ujavabase::trust_Uinstall_Ubase:/etc/bazel/bazelrc',
];

describe('parseServerArgs', () => {
  it('reads the command line a real 4.2.3 client gave its server', () => {
    expect(parseServerArgs(CAPTURED)).toEqual({
      jvmFlags: CAPTURED.slice(0, 10),
      serverJar: '/usr/share/bazel/A-server.jar',
      outputBase: '/tmp/cap/ob',
      workspaceDirectory: '/tmp/cap/ws',
      installBase: '/usr/share/bazel',
      outputUserRoot: '/root/.cache/bazel/_bazel_root',
      installMd5: 'ee2c1e5edec0411c397a6dd23934bee7',
      maxIdleSecs: 10800,
      other: [
        '--noshutdown_on_low_sys_mem',
        '--connect_timeout_secs=30',
        '--default_system_javabase=/usr/lib/jvm/java-17-openjdk-amd64',
        '--failure_detail_out=/tmp/cap/ob/failure_detail.rawproto',
        '--expand_configs_in_place',
        '--idle_server_tasks',
        '--write_command_log',
        '--nowatchfs',
        '--nofatal_event_bus_exceptions',
        '--nowindows_enable_symlinks',
        '--client_debug=false',
        '--server_javabase=/tmp/cap/jb',
        '--product_name=Bazel',
        '--noincompatible_enable_execution_transition',
        '--option_sources=install_Ubase:/etc/bazel/bazelrc:output_Ubase::server_Ujavabase::trust_Uinstall_Ubase:/etc/bazel/bazelrc',
      ],
    });
  });

  it.each<[string, string[], object]>([
    ['no JVM part at all', ['--output_base=/ob'], { jvmFlags: [], serverJar: undefined, outputBase: '/ob', other: [] }],
    ['a value holding "="', ['-jar', 'x.jar', '--output_base=/a=b'], { outputBase: '/a=b' }],
    ['the last of a repeated option', ['--output_base=/one', '--output_base=/two'], { outputBase: '/two' }],
    ['unknown flags, kept in order', ['--output_base=/ob', '--future_flag=1', '--batch'], { other: ['--future_flag=1', '--batch'] }],
    ['no idle limit', ['--output_base=/ob', '--max_idle_secs=0'], { maxIdleSecs: 0 }],
    ['a known name without a value', ['--output_base=/ob', '--install_base'], { other: ['--install_base'] }],
  ])('handles %s', (_, argv, expected) => {
    expect(parseServerArgs(argv)).toMatchObject(expected);
  });

  it.each<[string, string[], RegExp]>([
    ['no --output_base', CAPTURED.filter((a) => !a.startsWith('--output_base=')), /no --output_base/],
    ['an empty --output_base', ['--output_base='], /no --output_base/],
    ['-jar without a jar', ['--output_base=/ob', '-jar'], /ends with -jar/],
    ['a non-numeric --max_idle_secs', ['--output_base=/ob', '--max_idle_secs=soon'], /--max_idle_secs.*'soon'/],
  ])('rejects %s', (_, argv, message) => {
    expect(() => parseServerArgs(argv)).toThrow(message);
  });
});
