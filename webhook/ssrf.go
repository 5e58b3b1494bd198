package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLen is the longest endpoint URL accepted, in bytes.
const MaxURLLen = 2048

// URLError is why an endpoint URL is refused at registration. Its message
// is meant for the API's field error on "url"; it names the address found
// but not the URL, whose query may hold a token.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

// ErrBlockedAddress marks a connection refused because the address it
// would reach is not public (see Blocked). Delivery errors wrap it.
var ErrBlockedAddress = errors.New("address is not public")

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// lookupTimeout bounds the DNS lookup of a registration, so that a slow
// name server answers the request with a 422 rather than holding it.
const lookupTimeout = 5 * time.Second

// ValidateURL checks an endpoint URL at registration with the system
// resolver. See ValidateURLWith.
func ValidateURL(raw string, allowPrivate bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	return ValidateURLWith(ctx, net.DefaultResolver, raw, allowPrivate)
}

// ValidateURLWith checks an endpoint URL at registration: absolute http or
// https, at most MaxURLLen bytes, no user:password, a host; and unless
// allowPrivate, a host that is not "localhost" and neither is nor resolves
// to an address Blocked refuses. A host that does not resolve is refused
// too, since nothing could be delivered to it.
//
// This check is a courtesy to the person registering: DNS can change
// after it, so delivery checks the address actually connected to again,
// every time (NewClient).
func ValidateURLWith(ctx context.Context, r Resolver, raw string, allowPrivate bool) error {
	if len(raw) > MaxURLLen {
		return &URLError{fmt.Sprintf("must be at most %d characters", MaxURLLen)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{"is not a valid URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return &URLError{"must be an absolute http or https URL"}
	case u.Opaque != "":
		return &URLError{"must be an absolute http or https URL"}
	case u.User != nil:
		return &URLError{"must not contain credentials"}
	case u.Hostname() == "":
		return &URLError{"must have a host"}
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return &URLError{"has an invalid port"}
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return &URLError{"must not point to localhost"}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if Blocked(ip) {
			return &URLError{fmt.Sprintf("must not point to a non-public address (%s)", ip)}
		}
		return nil
	}
	// "2130706433", "0x7f.1" or "127.1" is 127.0.0.1 to a browser and to
	// some resolvers (inet_aton): refuse such hosts rather than guess how
	// each one reads them. A real domain's last label is never all digits.
	if numericHost(host) {
		return &URLError{"must not be an IPv4 address in a non-standard form"}
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return &URLError{"host does not resolve"}
	}
	for _, ip := range addrs {
		if Blocked(ip) {
			return &URLError{fmt.Sprintf("host resolves to a non-public address (%s)", ip.Unmap())}
		}
	}
	return nil
}

func validPort(p string) bool {
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}

// numericHost reports whether the last label of host starts with a digit
// and is a number in any base inet_aton reads, the WHATWG URL rule for
// "this is an IPv4 address".
func numericHost(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// Non-public ranges that netip has no predicate for.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network": Linux connects 0.x to the local host
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (RFC 6598), often the provider's internal network
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), with :: and ::1
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001::/32"),       // Teredo: tunnels to an IPv4 address
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// Prefixes whose addresses embed an IPv4 address that a gateway would
// reach on the sender's behalf: the embedded address is checked too.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052
	sixTo4 = netip.MustParsePrefix("2002::/16")    // RFC 3056
)

// Blocked reports whether connecting to ip could reach something that is
// not on the public internet: loopback, private (RFC 1918, and fc00::/7
// unique local), link-local, multicast, unspecified, carrier-grade NAT,
// the other special-purpose ranges above, and IPv4 addresses in IPv6
// clothing (::ffff:127.0.0.1, NAT64 and 6to4 forms).
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return Blocked(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// dialControl refuses, at connect time, an address Blocked refuses. It
// sees the address after DNS resolution, on every new connection, so a
// name that resolved to a public address at registration and to a private
// one now (DNS rebinding, or a changed record) is caught.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", address, ErrBlockedAddress)
	}
	if Blocked(ap.Addr()) {
		return fmt.Errorf("connect to %s: %w", ap.Addr().Unmap(), ErrBlockedAddress)
	}
	return nil
}
