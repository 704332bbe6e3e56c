package testservices

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// watchdog runs "$@" in the background and stops it with signal $1 once its
// own standard input reaches end of file: when the test closes the pipe, or
// when the test binary exits in any way. After the process has exited it
// removes $2 (the service's directory) and exits with the process's status.
// The reader is a separate job because sh cannot wait for a child and read
// at once; a job's standard input is /dev/null, hence the copy on fd 3.
const watchdog = `sig=$1; dir=$2; shift 2
exec 3<&0
"$@" </dev/null &
pid=$!
{ read -r _ <&3; kill -"$sig" "$pid" 2>/dev/null; } &
reader=$!
exec 3<&-
wait "$pid"; rc=$?
kill "$reader" 2>/dev/null
rm -rf "$dir"
exit "$rc"`

// serviceSpec is how to run one service process.
type serviceSpec struct {
	name string
	// dir is the service's own directory; the watchdog removes it after the
	// process has exited.
	dir string
	// logPath receives the process's standard output and error. It is in
	// dir: the service keeps it open, to read it after the watchdog has
	// removed it.
	logPath string
	// stopSignal asks the process to shut down cleanly ("TERM", "INT").
	stopSignal string
	argv       []string
	// cred runs the watchdog and the process as another user (nil: as this
	// process's user).
	cred *syscall.Credential
}

// service is a running service process.
type service struct {
	spec    serviceSpec
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	log     *os.File
	exited  chan struct{}
	waitErr error
}

func startService(spec serviceSpec) (*service, error) {
	lf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-c", watchdog, "watchdog", spec.stopSignal, spec.dir}, spec.argv...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = spec.dir
	// A file, not a writer: no copying goroutine for Wait to wait on.
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: spec.cred}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	s := &service{spec: spec, cmd: cmd, stdin: stdin, log: lf, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// stop asks the service to shut down and waits for it and its watchdog to
// exit; past timeout it kills the process group and removes the directory
// itself.
func (s *service) stop(timeout time.Duration) error {
	defer s.log.Close()
	s.stdin.Close()
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	return errors.Join(fmt.Errorf("%s did not stop within %s; killed", s.spec.name, timeout), os.RemoveAll(s.spec.dir))
}

// exitedErr reports whether the service has exited, and how.
func (s *service) exitedErr() (bool, error) {
	select {
	case <-s.exited:
		return true, s.waitErr
	default:
		return false, nil
	}
}

// logTail returns the last n lines of the service's log (of its last
// 64 KiB), read through the service's own descriptor: the file may have
// been removed with the service's directory.
func (s *service) logTail(n int) string {
	fi, err := s.log.Stat()
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", s.spec.logPath, err)
	}
	off := max(fi.Size()-64<<10, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := s.log.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(log %s: %v)", s.spec.logPath, err)
	}
	return lastLines(string(b), n)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the service binds it; the callers
// retry with a new port when the service cannot bind.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
