package ledgerd

import "testing"

// frozenState is newState with the given accounts frozen.
func frozenState(ids ...string) *State {
	s := newState()
	for _, id := range ids {
		s.Book.Get(id).Frozen = true
	}
	return s
}

func TestDecideFrozen(t *testing.T) {
	t.Parallel()
	const holdID, postedID = "00000000-0000-7000-8000-0000000000aa", "00000000-0000-7000-8000-0000000000bb"
	hold := func() *WriteItem {
		it := transfer("alice", "bob", 10)
		it.Request.Pending = true
		return it
	}
	expire := func(s *State) {
		past := decideAt.Add(-1)
		s.Targets[holdID].Tx.ExpiresAt = &past
	}
	tests := []struct {
		name   string
		frozen []string
		prep   func(*State)
		items  func() []*WriteItem
		atomic bool
		want   []Code
	}{
		{name: "transfer debiting a frozen account", frozen: []string{"alice"},
			items: func() []*WriteItem { return []*WriteItem{transfer("alice", "bob", 1)} }, want: []Code{CodeAccountFrozen}},
		{name: "credit to a frozen account goes through", frozen: []string{"bob"},
			items: func() []*WriteItem { return []*WriteItem{transfer("alice", "bob", 1)} }, want: []Code{""}},
		{name: "hold on a frozen account", frozen: []string{"alice"},
			items: func() []*WriteItem { return []*WriteItem{hold()} }, want: []Code{CodeAccountFrozen}},
		{name: "capture of a hold on a frozen account", frozen: []string{"alice"},
			items: func() []*WriteItem { return []*WriteItem{action(ActionPost, holdID)} }, want: []Code{CodeAccountFrozen}},
		{name: "void of a hold on a frozen account goes through", frozen: []string{"alice"},
			items: func() []*WriteItem { return []*WriteItem{action(ActionVoid, holdID)} }, want: []Code{""}},
		{name: "expiry of a hold on a frozen account goes through", frozen: []string{"alice"}, prep: expire,
			items: func() []*WriteItem { return []*WriteItem{action(ActionExpire, holdID)} }, want: []Code{""}},
		{name: "reversal debiting the frozen destination", frozen: []string{"bob"},
			items: func() []*WriteItem { return []*WriteItem{action(ActionReverse, postedID)} }, want: []Code{CodeAccountFrozen}},
		{name: "forced reversal too", frozen: []string{"bob"},
			items: func() []*WriteItem {
				it := action(ActionReverse, postedID)
				it.Action.Force = true
				return []*WriteItem{it}
			}, want: []Code{CodeAccountFrozen}},
		{name: "batch items are judged one by one", frozen: []string{"alice"},
			items: func() []*WriteItem {
				return []*WriteItem{transfer("bob", "alice", 1), transfer("alice", "bob", 1), transfer("world", "bob", 1)}
			}, want: []Code{"", CodeAccountFrozen, ""}},
		{name: "an atomic batch fails on its frozen item", frozen: []string{"alice"}, atomic: true,
			items: func() []*WriteItem {
				return []*WriteItem{transfer("world", "bob", 1), transfer("alice", "bob", 1)}
			}, want: []Code{"", CodeAccountFrozen}},
		{name: "frozen is checked before funds", frozen: []string{"alice"},
			items: func() []*WriteItem { return []*WriteItem{transfer("alice", "bob", 1_000_000)} }, want: []Code{CodeAccountFrozen}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := frozenState(tc.frozen...)
			if tc.prep != nil {
				tc.prep(s)
			}
			u := &WriteUnit{Items: tc.items(), Atomic: tc.atomic}
			d := Decide(s, []*WriteUnit{u}, len(u.Items), nil)
			accepted := 0
			for i, it := range u.Items {
				if got := errCode(it); got != tc.want[i] && !(tc.atomic && got == "" && it.Result == nil) {
					t.Fatalf("item %d: %v, want %q", i, it.Err, tc.want[i])
				}
				if it.Err != nil && it.Err.Code == CodeAccountFrozen && it.Err.Detail != "account "+tc.frozen[0]+" is frozen" {
					t.Fatalf("detail %q does not name the account", it.Err.Detail)
				}
				if it.Result != nil {
					accepted++
				}
			}
			if len(d.Transactions) != accepted {
				t.Fatalf("%d transactions decided, %d accepted", len(d.Transactions), accepted)
			}
			if tc.atomic && (u.FailedIndex != 1 || accepted != 0) {
				t.Fatalf("atomic unit: failed index %d, %d accepted", u.FailedIndex, accepted)
			}
		})
	}
}

// A rejection for a frozen account is stored under its key, as other
// business rejections are, and replayed even after the account thaws.
func TestDecideFrozenStored(t *testing.T) {
	t.Parallel()
	s := frozenState("alice")
	it := keyed(transfer("alice", "bob", 1), "k-frozen", "h")
	d := Decide(s, []*WriteUnit{single(it)}, 1, nil)
	if errCode(it) != CodeAccountFrozen || len(d.Keys) != 1 || d.Keys[0].Err == nil || d.Keys[0].Err.Code != CodeAccountFrozen {
		t.Fatalf("outcome %v, keys %+v", it.Err, d.Keys)
	}
	s.Book.Get("alice").Frozen = false
	again := keyed(transfer("alice", "bob", 1), "k-frozen", "h")
	Decide(s, []*WriteUnit{single(again)}, 1, nil)
	if !again.Replayed || errCode(again) != CodeAccountFrozen {
		t.Fatalf("replay %v %v", again.Replayed, again.Err)
	}
}
