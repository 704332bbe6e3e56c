package testservices

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const pgInstallHint = "install it with: apt-get update && apt-get install -y --no-install-recommends postgresql"

// Postgres returns the URL (postgres://...) of a new, empty database that is
// dropped when the test ends.
//
// One PostgreSQL server serves every call of a test binary: it is started on
// the first call and stopped when the binary exits. A server takes one to
// two seconds to initialize and start on a 2-core machine, a database about
// 0.15s, and a test of the state store wants a fresh database per test (or
// per replica set): a server per call would dominate the tests' time, and a
// shared database would make them depend on each other.
//
// The server is Debian's postgresql package (/usr/lib/postgresql/<ver>/bin),
// listening on 127.0.0.1 on a free port with its socket in its own
// temporary directory, with fsync off: the tests are about SQL and
// concurrency, not about surviving power loss. PostgreSQL refuses to run as
// root, so as root it runs as the postgres user the package creates. A
// machine without PostgreSQL fails the test with the command that installs it.
func Postgres(t testing.TB) string {
	t.Helper()
	srv, err := sharedPostgres()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("postgres: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the connections a test left open.
		if err := srv.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("postgres: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// sharedPostgres starts the test binary's PostgreSQL server once. It is
// package state on purpose: the server is shared by every test of the
// binary, and its watchdog stops it when the binary exits.
var sharedPostgres = sync.OnceValues(startPostgres)

// dbSeq makes database names unique within the binary (a test may ask
// for several, and names are cut to PostgreSQL's 63 bytes).
var dbSeq atomic.Int64

// databaseName is a database name for the test: lower case letters, digits
// and underscores, unique within the test binary.
func databaseName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	suffix := "_" + strconv.FormatInt(dbSeq.Add(1), 10)
	name := b.String()
	if max := 63 - len(suffix) - 1; len(name) > max {
		name = name[:max]
	}
	return "t" + name + suffix
}

type pgServer struct {
	svc  *service
	port int
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// exec runs one statement on the maintenance database.
func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func startPostgres() (*pgServer, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = userCredential("postgres"); err != nil {
			return nil, fmt.Errorf("PostgreSQL does not run as root and %v; %s", err, pgInstallHint)
		}
	}
	// A port taken between freePort and the server's bind is retried.
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		srv, err := startPostgresOnce(bin, cred)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errPortTaken = errors.New("port taken")

func startPostgresOnce(bin string, cred *syscall.Credential) (*pgServer, error) {
	dir, err := os.MkdirTemp("", "tidemark-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, lastLines(string(out), 20))
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	svc, err := startService(serviceSpec{
		name: "postgres", dir: dir, logPath: filepath.Join(dir, "postgres.log"),
		// SIGINT is PostgreSQL's fast shutdown.
		stopSignal: "INT",
		argv: []string{filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300"},
		cred: cred,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv := &pgServer{svc: svc, port: port}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := srv.exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return srv, nil
		}
		if done, werr := svc.exitedErr(); done {
			log := svc.logTail(20)
			if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
				return nil, fmt.Errorf("postgres on port %d: %w\n%s", port, errPortTaken, log)
			}
			return nil, fmt.Errorf("postgres exited before it accepted connections (%v):\n%s", werr, log)
		}
		if time.Now().After(deadline) {
			log := svc.logTail(20)
			svc.stop(10 * time.Second)
			return nil, fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postgresBinDir is the newest /usr/lib/postgresql/<ver>/bin (Debian's
// layout, where the server is not on PATH), else the directory of postgres
// on PATH.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) > pgVersion(found[j]) })
		return found[0], nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no postgres on PATH); %s", pgInstallHint)
}

// pgVersion is the major version in a /usr/lib/postgresql/<ver>/bin path.
func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func userCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("look up user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
