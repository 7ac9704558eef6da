/**
 * libvirt domain XML for guests whose disks are strata vhost-user-blk sockets. One generator
 * for the libvirt VM test (vm-tests/cases/libvirt.test.ts) and for the snippet the quick start
 * prints, so the two cannot drift.
 *
 * What a vhost-user disk needs from libvirt:
 * - guest RAM the back-end can map: `<memoryBacking><source type='memfd'/><access
 *   mode='shared'/></memoryBacking>` (libvirt turns it into memory-backend-memfd,share=on);
 * - `<disk type='vhostuser'>` with `<source type='unix' path=…>` and `<reconnect enabled='yes'
 *   timeout='1'/>` (QEMU's chardev `reconnect=1`: a restarted daemon is a pause, not an error);
 * - `queues` ≤ the daemon's `--num-queues`.
 *
 *   node dist/scripts/libvirt-xml.js --socket PATH [--snippet] [--name vm1] [--target vdb] [--queues 2]
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface LibvirtVhostDisk {
  socketPath: string;
  /** Guest device name (vda, vdb, …). */
  target: string;
  /** virtio queues (≤ the daemon's --num-queues). Default 2. */
  queues?: number;
  /** QEMU's reconnect interval in seconds (0: no reconnect). Default 1. */
  reconnectS?: number;
}

export interface LibvirtDomainOptions {
  name: string;
  /** 'qemu' = TCG (what runs on the project's machines), 'kvm' = hardware virtualisation. */
  type: 'qemu' | 'kvm';
  memMiB: number;
  vcpus: number;
  disks: LibvirtVhostDisk[];
  /** Direct kernel boot. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** fw_cfg entries (`<sysinfo type='fwcfg'>`), e.g. opt/strata/job → a host file. */
  fwcfg?: { name: string; file: string }[];
  /** Serial console (ttyS0) written to this host file; else a pty. */
  serialLogFile?: string;
  emulator?: string;
  /**
   * Run this domain's QEMU as root (`<seclabel type='static' model='dac'>` +0:+0, no
   * relabelling). For tests whose files live in root-only directories; not for production.
   */
  runAsRoot?: boolean;
  /** on_poweroff/on_reboot/on_crash = destroy (QEMU's -no-reboot). Default true. */
  noReboot?: boolean;
}

/** Escapes text for an XML attribute value or element content. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

const MEMORY_BACKING = ["<memoryBacking>", "  <source type='memfd'/>", "  <access mode='shared'/>", '</memoryBacking>'];

/** `<disk type='vhostuser'>` for one strata socket. */
export function vhostUserDiskXml(d: LibvirtVhostDisk): string[] {
  const reconnect = d.reconnectS ?? 1;
  return [
    "<disk type='vhostuser' device='disk'>",
    `  <driver name='qemu' type='raw' queues='${d.queues ?? 2}'/>`,
    `  <source type='unix' path='${xmlEscape(d.socketPath)}'>`,
    reconnect > 0 ? `    <reconnect enabled='yes' timeout='${reconnect}'/>` : "    <reconnect enabled='no'/>",
    '  </source>',
    `  <target dev='${xmlEscape(d.target)}' bus='virtio'/>`,
    '</disk>',
  ];
}

/** The fragments to add to an existing domain: shared memfd RAM and the disk. */
export function libvirtSnippet(d: LibvirtVhostDisk): string {
  return [
    '<!-- in <domain>: guest RAM must be shared memfd memory for any vhost-user device -->',
    ...MEMORY_BACKING,
    '<!-- in <devices>: -->',
    ...vhostUserDiskXml(d),
  ].join('\n');
}

const indent = (lines: string[], n: number): string[] => lines.map((l) => ' '.repeat(n) + l);

/** A complete domain. */
export function libvirtDomainXml(o: LibvirtDomainOptions): string {
  const destroy = o.noReboot ?? true;
  const os = [
    "<type arch='x86_64' machine='q35'>hvm</type>",
    ...(o.kernel !== undefined ? [`<kernel>${xmlEscape(o.kernel)}</kernel>`] : []),
    ...(o.initrd !== undefined ? [`<initrd>${xmlEscape(o.initrd)}</initrd>`] : []),
    ...(o.cmdline !== undefined ? [`<cmdline>${xmlEscape(o.cmdline)}</cmdline>`] : []),
  ];
  const sysinfo = o.fwcfg !== undefined && o.fwcfg.length > 0
    ? ["<sysinfo type='fwcfg'>", ...o.fwcfg.map((e) => `  <entry name='${xmlEscape(e.name)}' file='${xmlEscape(e.file)}'/>`), '</sysinfo>']
    : [];
  const serial = o.serialLogFile !== undefined
    ? [
        "<serial type='file'>", `  <source path='${xmlEscape(o.serialLogFile)}'/>`, "  <target port='0'/>", '</serial>',
        "<console type='file'>", `  <source path='${xmlEscape(o.serialLogFile)}'/>`, "  <target type='serial' port='0'/>", '</console>',
      ]
    : ["<serial type='pty'>", "  <target port='0'/>", '</serial>', "<console type='pty'>", "  <target type='serial' port='0'/>", '</console>'];
  const devices = [
    ...(o.emulator !== undefined ? [`<emulator>${xmlEscape(o.emulator)}</emulator>`] : []),
    ...o.disks.flatMap(vhostUserDiskXml),
    ...serial,
    "<memballoon model='none'/>",
  ];
  const lines = [
    `<domain type='${o.type}'>`,
    `  <name>${xmlEscape(o.name)}</name>`,
    `  <memory unit='MiB'>${o.memMiB}</memory>`,
    `  <vcpu>${o.vcpus}</vcpu>`,
    ...indent(MEMORY_BACKING, 2),
    ...indent(sysinfo, 2),
    '  <os>',
    ...indent(os, 4),
    '  </os>',
    '  <features>',
    '    <acpi/>',
    '  </features>',
    o.type === 'kvm' ? "  <cpu mode='host-passthrough'/>" : "  <cpu mode='maximum'/>",
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>${destroy ? 'destroy' : 'restart'}</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    '  <devices>',
    ...indent(devices, 4),
    '  </devices>',
    ...(o.runAsRoot === true ? ["  <seclabel type='static' model='dac' relabel='no'>", '    <label>+0:+0</label>', '  </seclabel>'] : []),
    '</domain>',
  ];
  return lines.join('\n') + '\n';
}

// CLI: the quick start prints the snippet (or a whole domain) with it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      snippet: { type: 'boolean', default: false },
      name: { type: 'string', default: 'vm1' },
      target: { type: 'string', default: 'vdb' },
      queues: { type: 'string', default: '2' },
      kvm: { type: 'boolean', default: false },
      'mem-mib': { type: 'string', default: '1024' },
    },
  });
  if (values.socket === undefined) {
    process.stderr.write('usage: libvirt-xml --socket PATH [--snippet] [--name vm1] [--target vdb] [--queues 2] [--kvm]\n');
    process.exit(2);
  }
  const disk: LibvirtVhostDisk = { socketPath: values.socket, target: values.target, queues: Number(values.queues) };
  process.stdout.write(values.snippet
    ? libvirtSnippet(disk) + '\n'
    : libvirtDomainXml({ name: values.name, type: values.kvm ? 'kvm' : 'qemu', memMiB: Number(values['mem-mib']), vcpus: 2, disks: [disk] }));
}
