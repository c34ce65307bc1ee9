"""Extracts a code package safely: `python3 extract.py ZIP DEST MAX_BYTES MAX_ENTRIES`.

DEST must not exist. Refuses (exit status 2, one line on stderr saying why) a package that is not a
zip, has more than MAX_ENTRIES entries, an absolute path, a `..` segment, a symbolic link or device
entry, an encrypted or duplicate entry, or more than MAX_BYTES uncompressed bytes. The bytes are
counted while they are written, whatever the headers claim. Files are written 0644, or 0755 when
the entry was made on Unix with any execute bit in its mode (a Custom Runtime's `scf_bootstrap`, a
binary); folders 0755; never through a symbolic link, never setuid, setgid or sticky. The agent that
runs this also enforces a time limit.
"""
import os
import stat
import sys
import zipfile

REFUSED = 2
"""Exit status of a refused package."""
CHUNK_BYTES = 64 * 1024
"""Bytes copied per read."""
UNIX_SYSTEM = 3
"""ZipInfo.create_system of an entry made on Unix (its external attributes carry a file mode)."""


EXECUTABLE_BITS = 0o111
"""Any of these in an entry's Unix mode makes its file executable (0755)."""


def file_mode(info):
    """0755 for an entry made on Unix with an execute bit in its mode, else 0644."""
    mode = info.external_attr >> 16
    return 0o755 if info.create_system == UNIX_SYSTEM and mode & EXECUTABLE_BITS else 0o644


class Refused(Exception):
    """The package breaks one of the rules above."""


def declared_entry_count(path):
    """The entry count of the end-of-central-directory record, read before any entry is parsed."""
    with open(path, "rb") as file:
        record = zipfile._EndRecData(file)  # noqa: SLF001 - the one reader of the end record
    if record is None:
        raise Refused("code package is not a valid zip")
    return record[zipfile._ECD_ENTRIES_TOTAL]  # noqa: SLF001


def safe_parts(name):
    """The path segments of an entry name; refuses absolute paths, `..`, NUL and backslashes."""
    if "\x00" in name or "\\" in name:
        raise Refused(f"entry {name[:200]!r} has a NUL or a backslash in its name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise Refused(f"entry {name[:200]!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused(f"entry {name[:200]!r} has a .. segment")
    return parts


def check_kind(info):
    """Refuses symbolic links, devices, FIFOs and sockets (by the Unix mode in the entry)."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == UNIX_SYSTEM and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Refused(f"entry {info.filename[:200]!r} is not a regular file or folder")
    if info.flag_bits & 0x1:
        raise Refused(f"entry {info.filename[:200]!r} is encrypted")


def make_folders(dest, parts):
    """Creates dest/parts... as real folders (0755); refuses when one is a file or a link."""
    path = dest
    for part in parts:
        path = os.path.join(path, part)
        if os.path.lexists(path):
            if os.path.islink(path) or not os.path.isdir(path):
                raise Refused(f"entry path {'/'.join(parts)[:200]!r} collides with a file")
        else:
            os.mkdir(path, 0o755)
    return path


def extract(zip_path, dest, max_bytes, max_entries):
    declared = declared_entry_count(zip_path)
    if declared > max_entries:
        raise Refused(f"code package has {declared} entries, over the limit of {max_entries}")
    os.mkdir(dest, 0o755)
    written = 0
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        if len(infos) > max_entries:
            raise Refused(f"code package has {len(infos)} entries, over the limit of {max_entries}")
        declared_bytes = sum(info.file_size for info in infos)
        if declared_bytes > max_bytes:
            raise Refused(f"code package unpacks to {declared_bytes} bytes, over the limit of {max_bytes}")
        for info in infos:
            check_kind(info)
            parts = safe_parts(info.filename)
            if not parts:
                continue
            if info.is_dir():
                make_folders(dest, parts)
                continue
            folder = make_folders(dest, parts[:-1])
            target = os.path.join(folder, parts[-1])
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            try:
                descriptor = os.open(target, flags, file_mode(info))
            except FileExistsError:
                raise Refused(f"entry {info.filename[:200]!r} appears twice") from None
            with os.fdopen(descriptor, "wb") as out, archive.open(info) as source:
                while True:
                    chunk = source.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > max_bytes:
                        raise Refused(f"code package unpacks to more than {max_bytes} bytes")
                    out.write(chunk)


def main():
    zip_path, dest, max_bytes, max_entries = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.umask(0o022)
    try:
        extract(zip_path, dest, max_bytes, max_entries)
    except Refused as error:
        print(str(error), file=sys.stderr)
        return REFUSED
    except Exception as error:  # noqa: BLE001 - a corrupt archive fails in many ways (zlib, CRC, EOF)
        print(f"code package is not a valid zip: {error}"[:500], file=sys.stderr)
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
