/**
 * Reads the tunnel's shared secret (`--secret-file FILE`, tcpcopy and intercept). The file
 * must be a regular file (not a symlink) that only its owner may access (mode 0600 or 0400);
 * anything else is refused with one line naming the file and the fix (the caller exits 2).
 * Trailing white space (the newline of `echo ... > file`) is not part of the secret.
 */
import { MIN_SECRET_BYTES } from "./auth.ts";

/** Either the secret bytes or a one-line error. */
export type SecretResult = { ok: true; secret: Uint8Array } | { ok: false; error: string };

/** Either a private file's bytes or a one-line error. */
export type PrivateFileResult = { ok: true; bytes: Uint8Array } | { ok: false; error: string };

/**
 * Reads a file only its owner may access: a regular file (not a symlink), mode 0600 or 0400
 * (nothing for group and others), the inode opened being the one checked, at most `maxBytes`.
 * Errors are one line starting with `flag "path":` (used for --secret-file and --auth-file).
 */
export function readPrivateFile(
  path: string,
  flag: string,
  what: string,
  maxBytes = 1 << 20,
): PrivateFileResult {
  const bad = (why: string): PrivateFileResult => ({
    ok: false,
    error: `${flag} ${JSON.stringify(path)}: ${why}`,
  });
  if (path.trim() === "") return bad(`expected the path of a file holding ${what}`);
  let link: Deno.FileInfo;
  try {
    link = Deno.lstatSync(path);
  } catch (e) {
    return bad(`cannot read it (${(e as Error).message.split("\n")[0]})`);
  }
  if (link.isSymlink) return bad("is a symlink; give the file itself");
  if (!link.isFile) return bad("is not a regular file");
  const mode = link.mode ?? 0;
  if ((mode & 0o077) !== 0) {
    return bad(
      `is accessible by group or others (mode ${(mode & 0o777).toString(8)}); ` +
        `run chmod 600 on it`,
    );
  }
  let bytes: Uint8Array;
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path, { read: true });
    const st = file.statSync();
    // the file opened must be the one checked (not swapped for another in between)
    if (st.ino !== link.ino || st.dev !== link.dev) return bad("changed while being read");
    if (st.size > maxBytes) return bad(`is larger than ${maxBytes} bytes`);
    bytes = new Uint8Array(st.size);
    let have = 0;
    while (have < bytes.length) {
      const n = file.readSync(bytes.subarray(have));
      if (n === null || n === 0) break;
      have += n;
    }
    bytes = bytes.subarray(0, have);
  } catch (e) {
    return bad(`cannot read it (${(e as Error).message.split("\n")[0]})`);
  } finally {
    file?.close();
  }
  return { ok: true, bytes };
}

/** Reads and checks the secret file; `flag` names the flag in the error. */
export function readSecretFile(path: string, flag = "--secret-file"): SecretResult {
  const bad = (why: string): SecretResult => ({
    ok: false,
    error: `${flag} ${JSON.stringify(path)}: ${why}`,
  });
  const r = readPrivateFile(path, flag, "the shared secret");
  if (!r.ok) return r;
  const bytes = r.bytes;
  let end = bytes.length;
  while (
    end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d ||
      bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)
  ) end--;
  if (end < MIN_SECRET_BYTES) {
    return bad(
      `holds ${end} bytes; the secret needs at least ${MIN_SECRET_BYTES} ` +
        `(e.g. head -c 32 /dev/urandom | base64 > FILE)`,
    );
  }
  return { ok: true, secret: bytes.slice(0, end) };
}
