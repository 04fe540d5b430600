#pragma once

// SQLite's WAL write coalescing: a VFS that wraps the default one and hands
// each commit's WAL frames to the kernel in one write instead of two per
// page (see the .cpp for when it flushes, and why that keeps every
// guarantee of the default VFS). Its interface is a VFS name, so this
// header needs nothing of <sqlite3.h>.

namespace vigil {

/// The name of the WAL-coalescing VFS, to pass to `sqlite3_open_v2` (and
/// to connections of the same file, like the checkpointer's), registered
/// with SQLite on the first call (not as the default VFS); nullptr when the
/// default VFS cannot be wrapped, and connections then use it directly.
const char* wal_coalescing_vfs();

} // namespace vigil
