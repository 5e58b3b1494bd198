package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a PgBouncer in transaction mode in front of a cluster, on a
// free loopback port, as the tests run every connection through it.
type PgBouncer struct {
	Port    int
	Dir     string // configuration, log and pid file
	cluster *Cluster
	cmd     *exec.Cmd
	done    chan struct{}
}

// FindPgBouncer locates the pgbouncer binary ($PGBOUNCER, PATH, /usr/sbin).
func FindPgBouncer() (string, error) {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", errors.New("pgcluster: no pgbouncer binary (install the pgbouncer package: scripts/ensure-pgbouncer.sh)")
}

// bouncerIni is the configuration ledgerd needs from PgBouncer (see
// docs/pgbouncer.md); every database of the cluster is reachable by name.
const bouncerIni = `[databases]
* = host=127.0.0.1 port=%d user=postgres%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 4000
default_pool_size = 20
max_user_connections = 200
server_idle_timeout = 10
; after a failed server login (PostgreSQL restarting) PgBouncer refuses
; logins for this long (default 15 s): keep it short
server_login_retry = 1
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`

// StartPgBouncer starts PgBouncer in front of c and waits until it passes
// a query through.
func (c *Cluster) StartPgBouncer(ctx context.Context) (*PgBouncer, error) {
	bin, err := FindPgBouncer()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	b := &PgBouncer{Dir: dir, cluster: c, done: make(chan struct{})}
	fail := func(err error) (*PgBouncer, error) {
		_ = b.Stop()
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fail(fmt.Errorf("pgcluster: %w", err))
		}
	}
	pw := ""
	if c.password != "" {
		pw = " password=" + c.password
	}
	if b.Port, err = freePort(); err != nil {
		return fail(err)
	}
	ini := filepath.Join(dir, "pgbouncer.ini")
	conf := fmt.Sprintf(bouncerIni, c.Port, pw, b.Port, filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	if err := os.WriteFile(ini, []byte(conf), 0o600); err != nil {
		return fail(fmt.Errorf("pgcluster: %w", err))
	}
	if c.cred != nil {
		if err := os.Chown(ini, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fail(fmt.Errorf("pgcluster: %w", err))
		}
	}
	cmd := exec.Command(bin, ini)
	cmd.Dir = "/"
	cmd.Env = childEnv()
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	setParentDeathSignal(attr, syscall.SIGTERM)
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("pgcluster: start pgbouncer: %w", err))
	}
	b.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(b.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-b.done:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return fail(fmt.Errorf("pgcluster: pgbouncer exited at start:\n%s", strings.TrimSpace(string(log))))
		default:
		}
		cfg, err := pgx.ParseConfig(b.URL("postgres"))
		if err != nil {
			return fail(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.ConnectConfig(actx, cfg)
		if err == nil {
			_, err = conn.Exec(actx, "SELECT 1")
			conn.Close(context.Background())
		}
		cancel()
		if err == nil {
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("pgcluster: pgbouncer not answering: %w", err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is a connection URL for database db through PgBouncer.
func (b *PgBouncer) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", b.Port),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Stop shuts PgBouncer down (SIGTERM: immediate shutdown; then SIGKILL)
// and removes its directory.
func (b *PgBouncer) Stop() error {
	var err error
	if b.cmd != nil && b.cmd.Process != nil {
		pid := b.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-b.done
		}
	}
	if b.Dir != "" {
		err = os.RemoveAll(b.Dir)
	}
	return err
}
