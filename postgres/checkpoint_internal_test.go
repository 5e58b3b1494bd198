package postgres

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
)

// touch returns a batch whose book moved the given accounts to version v,
// after remembering them in the cache as the writer does.
func touch(cache *AccountCache, v int64, ids ...string) *batchState {
	book := ledgerd.NewBook(len(ids))
	for _, id := range ids {
		book.Put(id, &ledgerd.BookAccount{Asset: "USD", Version: v, Touched: true, Balance: ledgerd.Balance{Posted: v}})
	}
	cache.remember(book, v, 0, time.Time{})
	batch := newBatchState(1, book, 0)
	return batch
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

func TestPlanCheckpointRounds(t *testing.T) {
	cache := NewAccountCache()
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	every := 10 * time.Second

	// The first commit starts a round at once with what it touched.
	batch := touch(cache, 1, "b", "a")
	batch.planCheckpoint(cache, every, t0)
	if !slices.Equal(batch.ckpt.id, []string{"a", "b"}) || !slices.Equal(batch.ckpt.versions, []int64{1, 1}) {
		t.Fatalf("first commit writes %v %v", batch.ckpt.id, batch.ckpt.versions)
	}

	// Within the interval nothing is written; the touched rows wait.
	many := ids("acct:", 3000)
	batch = touch(cache, 2, many...)
	batch.planCheckpoint(cache, every, t0.Add(time.Second))
	if len(batch.ckpt.id) != 0 {
		t.Fatalf("a commit inside the interval writes %d rows", len(batch.ckpt.id))
	}

	// Due: the round is written over the next commits, each taking the
	// larger of checkpointChunkMin and twice what it touched, in id order,
	// with the newest cached state.
	seen := map[string]int64{}
	var commits int
	for at := t0.Add(11 * time.Second); ; at = at.Add(time.Millisecond) {
		batch = touch(cache, 3, "a")
		batch.planCheckpoint(cache, every, at)
		if len(batch.ckpt.id) == 0 {
			break
		}
		commits++
		if len(batch.ckpt.id) > checkpointChunkMin || !slices.IsSorted(batch.ckpt.id) {
			t.Fatalf("commit %d writes %d rows, sorted %v", commits, len(batch.ckpt.id), slices.IsSorted(batch.ckpt.id))
		}
		for i, id := range batch.ckpt.id {
			if _, dup := seen[id]; dup {
				t.Fatalf("%s written twice in one round", id)
			}
			seen[id] = batch.ckpt.versions[i]
		}
	}
	if len(seen) != 3001 || seen["a"] != 3 || seen["acct:00042"] != 2 {
		t.Fatalf("round wrote %d rows (a v%d, acct:00042 v%d); want 3,001 (b was written in the first round)", len(seen), seen["a"], seen["acct:00042"])
	}
	if want := (3001 + checkpointChunkMin - 1) / checkpointChunkMin; commits != want {
		t.Fatalf("round took %d commits, want %d", commits, want)
	}
	// a, touched again while the round ran, is behind once more: it is
	// in the next round, not this one.
	if _, ok := cache.dirty["a"]; !ok {
		t.Fatal("a is not dirty after the round")
	}

	// Found behind by a read, an account is written in the next round
	// even though the batch did not move it.
	batch = touch(cache, 4)
	batch.behind = []string{"acct:00007"}
	batch.planCheckpoint(cache, every, t0.Add(time.Minute))
	if !slices.Contains(batch.ckpt.id, "acct:00007") || !slices.Contains(batch.ckpt.id, "a") {
		t.Fatalf("next round writes %v", batch.ckpt.id)
	}

	// A failed commit drops the cache and with it what was behind.
	touch(cache, 5, "z").planCheckpoint(cache, every, t0.Add(time.Minute+time.Second))
	cache.Invalidate()
	if len(cache.dirty) != 0 || len(cache.round) != 0 {
		t.Fatalf("after Invalidate: %d dirty, %d in the round", len(cache.dirty), len(cache.round))
	}
}

// Without a cache, or with checkpoints off, a commit writes what it touched.
func TestPlanCheckpointEveryCommit(t *testing.T) {
	cache := NewAccountCache()
	batch := touch(cache, 1, "c", "a")
	batch.state.Book.Put("b", &ledgerd.BookAccount{Version: 9}) // read, not moved
	batch.planCheckpoint(nil, time.Hour, time.Now())
	if !slices.Equal(batch.ckpt.id, []string{"a", "c"}) {
		t.Fatalf("no cache: %v", batch.ckpt.id)
	}
	batch = touch(cache, 2, "c", "a")
	batch.planCheckpoint(cache, -1, time.Now())
	if !slices.Equal(batch.ckpt.id, []string{"a", "c"}) || len(cache.dirty) != 0 {
		t.Fatalf("off: %v, %d dirty", batch.ckpt.id, len(cache.dirty))
	}
}
