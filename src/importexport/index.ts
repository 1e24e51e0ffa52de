// Import and export of mail, for the command line and the account web page.
//
// Importing (into a live Account of the running server, so sessions see the new mail):
//
//   importArchive(account, stream, { onProgress, quota })
//       A zip, tar or tar.gz (recognized by its first bytes) of Maildirs and mbox files,
//       or one plain mbox file. Maildirs are directories with cur/ and new/; their path
//       is the mailbox name ("Lists/work/cur/..." goes to Lists/work), a directory named
//       "Maildir" or the archive root is the Inbox, and Maildir++ folders (".Lists.work")
//       are mapped to "Lists/work". mbox files are files starting with "From "; the
//       mailbox is the path without ".mbox" (Thunderbird's "X.sbd/" directories count as X).
//   importMaildir(account, dir, mailbox, opts), importMbox(account, fileOrStream, mailbox, opts)
//
//   Flags come from Maildir file names (":2,DFPRST" plus Dovecot keyword letters with their
//   dovecot-keywords file) and from mbox Status, X-Status and X-Keywords headers (taken
//   out of the stored message). Line endings become CRLF. Messages are stored in batches
//   of one commit each; the stream is read as it is imported (a zip goes to a temporary
//   file first: its directory is at its end). onProgress({imported, mailbox}) is called
//   every 1000 messages and at the end. Stored messages are change events of the account,
//   as deliveries are: open IMAP sessions see them, and the junk filter's trainer learns
//   from those flagged $Junk or $NotJunk. Errors are ImportError (bad input, quota),
//   MboxError, TarError or ZipError; messages stored before an error stay.
//
// Exporting (read-only: an open Account, or openAccountReadOnly(accountDir)):
//
//   exportAccount(account, { format: 'maildir' | 'mbox', archive: 'zip' | 'tgz' | 'tar', mailbox? }, out)
//       Writes the archive to out and ends it. One maildir ("Name/cur/...", with a
//       dovecot-keywords file when keywords are used) or one "Name.mbox" file per mailbox,
//       named by the mailbox's path. mbox files use mboxrd quoting and LF line endings, and
//       carry flags in Status/X-Status/X-Keywords headers; Maildir files use LF unless
//       crlf is set. Whatever is exported imports back to the same messages, flags and
//       keywords, and internal dates to the second.
//   exportToDir(account, { format, mailbox? }, dir)
//
// The archive formats are usable on their own: ZipWriter/ZipReader (Zip64, streaming),
// TarWriter/readTar (ustar with pax names), and the Maildir and mbox codecs.
export { importArchive, importMaildir, importMbox, Importer, ImportError, maildirMailbox, mboxMailbox } from './importer.js';
export type { ImportOptions, ImportProgress, ImportResult } from './importer.js';
export { exportAccount, exportToDir, openAccountReadOnly, ExportError } from './exporter.js';
export type { AccountSource, ArchiveFormat, ExportOptions, ExportResult, MailFormat } from './exporter.js';
export { readMbox, formatMbox, MboxError, asctime, parseAsctime } from './mbox.js';
export { readMaildir, isMaildir, maildirInfo, infoFlags, formatInfo, parseDovecotKeywords, KeywordLetters } from './maildir.js';
export { TarWriter, readTar, TarError } from './tar.js';
export { ZipWriter, ZipReader, ZipError } from './zip.js';
