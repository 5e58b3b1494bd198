package job_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// message is what the test SMTP server received: the envelope and the
// parsed message.
type message struct {
	From    string
	To      []string
	Subject string
	ID      string
	Body    string
}

// smtpServer is a real SMTP server on loopback TCP that keeps what it
// receives. It offers STARTTLS (a certificate for 127.0.0.1 that tlsClient
// trusts); with a user set it requires AUTH PLAIN with that user.
type smtpServer struct {
	addr       string
	tlsClient  *tls.Config
	user, pass string
	mu         sync.Mutex
	msgs       []message
	srv        *smtp.Server
}

func newSMTPServer(t *testing.T, user, pass string) *smtpServer {
	t.Helper()
	s := &smtpServer{user: user, pass: pass}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	// httptest's certificate is for 127.0.0.1: borrow it.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	s.srv.TLSConfig = &tls.Config{Certificates: ts.TLS.Certificates}
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	s.tlsClient = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *smtpServer) URL() string {
	if s.user != "" {
		return "smtp://" + s.user + ":" + s.pass + "@" + s.addr
	}
	return "smtp://" + s.addr
}

func (s *smtpServer) messages() []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]message(nil), s.msgs...)
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }

type smtpSession struct {
	srv    *smtpServer
	authed bool
	from   string
	to     []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.srv.user || pass != ss.srv.pass {
			return errors.New("bad credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return err
	}
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		if body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
			return err
		}
	case "base64":
		if body, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body))); err != nil {
			return err
		}
	}
	ss.srv.mu.Lock()
	ss.srv.msgs = append(ss.srv.msgs, message{From: ss.from, To: append([]string(nil), ss.to...), Subject: subject,
		ID: m.Header.Get("Message-Id"), Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	ss.srv.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }
