package ledgerd

import (
	"context"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, p := range []Position{0, 1, 0x16B3748, 1<<64 - 1} {
		got, err := ParseToken(p.Token())
		if err != nil || got != p {
			t.Fatalf("%d: got %d, %v from %q", p, got, err, p.Token())
		}
	}
	for _, s := range []string{"", "v1.", "v2.AAAAAAFrN0g", "v1.AAAAAAFrN0g=", "v1.AAAAAAFrN0", "v1.!AAAAAFrN0g", "0/16B3748"} {
		if _, err := ParseToken(s); err == nil {
			t.Fatalf("%q parsed", s)
		}
	}
	if ReadAfter(context.Background()) != 0 || ReadAfter(WithReadAfter(context.Background(), 7)) != 7 {
		t.Fatal("context position lost")
	}
}
