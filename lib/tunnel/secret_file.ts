/**
 * Reads the tunnel's shared secret (`--secret-file FILE`, tcpcopy and intercept). The file
 * must be a regular file (not a symlink) that only its owner may access (mode 0600 or 0400);
 * anything else is refused with one line naming the file and the fix (the caller exits 2).
 * Trailing white space (the newline of `echo ... > file`) is not part of the secret.
 */
import { MIN_SECRET_BYTES } from "./auth.ts";

/** Either the secret bytes or a one-line error. */
export type SecretResult = { ok: true; secret: Uint8Array } | { ok: false; error: string };

/** Reads and checks the secret file; `flag` names the flag in the error. */
export function readSecretFile(path: string, flag = "--secret-file"): SecretResult {
  const bad = (why: string): SecretResult => ({
    ok: false,
    error: `${flag} ${JSON.stringify(path)}: ${why}`,
  });
  if (path.trim() === "") return bad("expected the path of a file holding the shared secret");
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
