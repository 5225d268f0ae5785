import type { Readable } from 'node:stream';

/** One entry of an archive, as its reader found it. */
export interface ArchiveEntry {
  /** As the archive spells it (checked before anything is written). */
  name: string;
  type: 'file' | 'directory' | 'link' | 'other';
  /** The bytes it declares it unpacks to. */
  size: number;
  /** Its content; a tar entry's must be read before the next entry is asked for. */
  open(): Promise<Readable>;
}

/** An archive that is damaged or not one Kiln reads. */
export class InvalidArchive extends Error {
  override name = 'InvalidArchive';
}

/** An archive with an entry that could write outside its folder or is not a plain file. */
export class UnsafeArchive extends Error {
  override name = 'UnsafeArchive';
}
