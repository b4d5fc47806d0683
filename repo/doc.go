// Package repo is aptfleet's apt repository: Debian version ordering, control
// paragraphs, .deb reading, Packages and Release indexes, OpenPGP signing, and
// the operations on a repository kept in a Store (an S3 bucket prefix or a
// local directory): Publish, Promote, Yank, Prune, Verify and List.
//
// # Layout
//
//	pool/<component>/<prefix>/<source>/<name>_<version>_<arch>.deb   immutable
//	dists/<dist>/InRelease                                            the commit point (clearsigned Release)
//	dists/<dist>/Release, Release.gpg                                 derived from InRelease
//	dists/<dist>/<component>/binary-<arch>/Packages.gz (.xz)          derived copies
//	dists/<dist>/<component>/binary-<arch>/by-hash/SHA256/<hex>       content-addressed indexes
//
// Release lists the uncompressed Packages too (apt needs the entry and
// checks the decompressed bytes against it), but only compressed indexes are
// stored, as on Debian's mirrors.
//
// # Publishing without a lock or a database
//
// The store is the only state. A change to a dist (publish, promote, yank,
// prune) reads InRelease and its ETag, reads the Packages indexes it names by
// hash, computes the new indexes, uploads them under by-hash names (which no
// reader can be using yet), and then commits by replacing InRelease with a
// conditional write on the ETag it read. A concurrent writer that committed
// first makes the write fail; the loser re-reads, re-applies its change and
// retries after a randomized backoff, so no package is ever lost. Pool files
// are written create-only before any index refers to them.
//
// Release, Release.gpg and the plain-path Packages files are derived state
// written after the commit; apt and Verify read InRelease and by-hash names,
// and every later change rewrites the derived files, so a publisher that dies
// (or loses a race) between the commit and those writes leaves nothing a client
// relies on inconsistent. Old by-hash objects are removed only by Prune, after
// a grace period, so a client holding the previous InRelease still succeeds.
package repo
