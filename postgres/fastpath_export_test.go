package postgres

// FastPathCounts returns how many of WriteBatch's fast attempts with this
// cache committed, and how many were rolled back and redone.
func (c *AccountCache) FastPathCounts() (committed, retried int) {
	return c.fastCommits, c.fastRetries
}
