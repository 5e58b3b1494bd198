package postgres

// FastPathCounts returns the fast path's committed and retried counts.
func (db *DB) FastPathCounts() (committed, retried int64) {
	return db.fastPath.committed.Load(), db.fastPath.retried.Load()
}
