package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", // cloud metadata
		"0.0.0.0", "0.1.2.3", "100.64.0.1", "100.127.255.255", "224.0.0.1", "239.255.255.250", "255.255.255.255",
		"240.0.0.1", "198.18.0.1", "192.0.2.1",
		"::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "ff05::2", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:c0a8:101::1", "2001:db8::1", "2001::1",
	}
	public := []string{
		"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.32.0.1", "192.169.0.1",
		"2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range blocked {
		if !Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s not blocked", s)
		}
	}
	for _, s := range public {
		if Blocked(netip.MustParseAddr(s)) {
			t.Errorf("%s blocked", s)
		}
	}
	if !Blocked(netip.Addr{}) {
		t.Error("the zero Addr is not blocked")
	}
}

// fakeResolver answers from a table, so that names resolving to private
// addresses can be tested without touching real DNS.
type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	r := fakeResolver{
		"hooks.example.com":    {"93.184.216.34"},
		"dual.example.com":     {"2606:4700::1", "93.184.216.35"},
		"internal.example.com": {"10.1.2.3"},
		"mixed.example.com":    {"93.184.216.34", "127.0.0.1"},
		"mapped.example.com":   {"::ffff:192.168.0.1"},
		"metadata.example.com": {"169.254.169.254"},
	}
	long := "https://hooks.example.com/" + strings.Repeat("a", MaxURLLen-len("https://hooks.example.com/"))
	cases := []struct {
		url          string
		allowPrivate bool
		want         string // "" = accepted; else a piece of the reason
	}{
		{"https://hooks.example.com/ledgerd?token=abc", false, ""},
		{"http://hooks.example.com:8080/x", false, ""},
		{"https://HOOKS.example.com./x", false, ""}, // looked up lower-cased, without the root dot
		{"https://dual.example.com/", false, ""},
		{long, false, ""},
		{long + "a", false, "at most 2048"},
		{"ftp://hooks.example.com/", false, "http or https"},
		{"hooks.example.com/path", false, "http or https"},
		{"/relative", false, "http or https"},
		{"https:opaque", false, "http or https"},
		{"mailto:a@b.c", false, "http or https"},
		{"https://user:pass@hooks.example.com/", false, "credentials"},
		{"https://user@hooks.example.com/", false, "credentials"},
		{"https:///nohost", false, "must have a host"},
		{"https://hooks.example.com:0/", false, "invalid port"},
		{"https://hooks.example.com:99999/", false, "invalid port"},
		{"https://hooks.example.com:http/", false, "not a valid URL"},
		{"https://[::1/", false, "not a valid URL"},
		{"https://exa mple.com/", false, "not a valid URL"},
		{"http://localhost:8080/", false, "localhost"},
		{"http://LOCALHOST./", false, "localhost"},
		{"http://api.localhost/", false, "localhost"},
		{"http://127.0.0.1/", false, "non-public address (127.0.0.1)"},
		{"http://[::1]:9000/", false, "non-public address (::1)"},
		{"http://[::ffff:127.0.0.1]/", false, "non-public address"},
		{"http://[fe80::1%25eth0]/", false, "non-public address"},
		{"http://10.0.0.8/", false, "non-public"},
		{"http://100.100.100.200/", false, "non-public"}, // CGNAT (Alibaba's metadata service lives here)
		{"http://169.254.169.254/latest/meta-data/", false, "non-public"},
		{"http://0.0.0.0:8080/", false, "non-public"},
		{"http://2130706433/", false, "non-standard form"},
		{"http://0x7f000001/", false, "non-standard form"},
		{"http://127.1/", false, "non-standard form"},
		{"http://0177.0.0.1/", false, "non-standard form"},
		{"http://internal.example.com/", false, "resolves to a non-public address (10.1.2.3)"},
		{"http://mixed.example.com/", false, "resolves to a non-public address (127.0.0.1)"},
		{"http://mapped.example.com/", false, "resolves to a non-public address (192.168.0.1)"},
		{"http://metadata.example.com/", false, "non-public"},
		{"http://nowhere.example.com/", false, "does not resolve"},
		// allowPrivate lets every private target through, but not a malformed URL.
		{"http://127.0.0.1:8080/", true, ""},
		{"http://localhost/", true, ""},
		{"http://internal.example.com/", true, ""},
		{"http://nowhere.example.com/", true, ""},
		{"https://user:pass@127.0.0.1/", true, "credentials"},
		{"ftp://127.0.0.1/", true, "http or https"},
		{long + "a", true, "at most 2048"},
	}
	for _, c := range cases {
		err := ValidateURLWith(t.Context(), r, c.url, c.allowPrivate)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ValidateURL(%.60q, %v) = %v, want accepted", c.url, c.allowPrivate, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("ValidateURL(%.60q, %v) = %v, want %q", c.url, c.allowPrivate, err, c.want)
		case err != nil:
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Errorf("%T is not a *URLError", err)
			}
			if strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "pass") {
				t.Errorf("reason %q repeats the URL", err)
			}
		}
	}
}

// TestValidateURLSystemResolver goes through the real resolver: localhost
// is refused by name before any lookup, a loopback literal only without
// allowPrivate.
func TestValidateURLSystemResolver(t *testing.T) {
	t.Parallel()
	if err := ValidateURL("http://localhost:1/", false); err == nil {
		t.Fatal("localhost accepted")
	}
	if err := ValidateURL("http://127.0.0.1:1/", false); err == nil {
		t.Fatal("127.0.0.1 accepted")
	}
	if err := ValidateURL("http://127.0.0.1:1/", true); err != nil {
		t.Fatal(err)
	}
}

// FuzzValidateURL: registration input never panics the check, and whatever
// it accepts without allowPrivate is an http(s) URL within the limit,
// without credentials, whose host is not a non-public address.
func FuzzValidateURL(f *testing.F) {
	r := fakeResolver{"hooks.example.com": {"93.184.216.34"}, "internal.example.com": {"10.0.0.1"}}
	for _, s := range []string{"https://hooks.example.com/x?y=z", "http://127.0.0.1/", "http://[::ffff:7f00:1]/", "http://0x7f.1/",
		"http://internal.example.com/", "https://u:p@hooks.example.com/", "http://[fe80::1%25en0]:80/", "javascript:alert(1)", "http://%31%32%37.0.0.1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidateURLWith(t.Context(), r, raw, true) != nil {
			if ValidateURLWith(t.Context(), r, raw, false) == nil {
				t.Fatalf("%q refused with allowPrivate but accepted without", raw)
			}
			return
		}
		if len(raw) > MaxURLLen {
			t.Fatalf("%d bytes accepted", len(raw))
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
			t.Fatalf("%q accepted", raw)
		}
		if ValidateURLWith(t.Context(), r, raw, false) != nil {
			return
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && Blocked(ip) {
			t.Fatalf("%q accepted though %s is not public", raw, ip)
		}
		if h := strings.ToLower(u.Hostname()); strings.Contains(h, "localhost") || h == "internal.example.com" {
			t.Fatalf("%q accepted", raw)
		}
	})
}
