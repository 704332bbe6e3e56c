package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newTestCA(t *testing.T, dir string) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tidemark test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{cert: cert, key: key, dir: dir}
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", der)
	return ca
}

// issue writes name.crt and name.key, signed by the CA, for a server on
// 127.0.0.1 or a client.
func (ca *testCA) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	writePEM(t, filepath.Join(ca.dir, name+".crt"), "CERTIFICATE", der)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	writePEM(t, filepath.Join(ca.dir, name+".key"), "PRIVATE KEY", kb)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// httpsClient trusts the CA and, with client, presents client.crt.
func httpsClient(t *testing.T, dir string, client bool) *http.Client {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(b))
	cfg := &tls.Config{RootCAs: pool}
	if client {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

// TestTLSEndToEnd: --web.config.file in Prometheus's format serves HTTPS;
// with client_auth_type RequireAndVerifyClientCert a handshake without a
// client certificate fails and one with it succeeds; Prometheus's own
// remote-write client writes over HTTPS. The file is read again for every
// connection, so the test changes it while the server runs.
func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	ca.issue(t, "server", 2, x509.ExtKeyUsageServerAuth)
	ca.issue(t, "client", 3, x509.ExtKeyUsageClientAuth)
	webCfg := filepath.Join(dir, "web.yml")
	writeWebConfig := func(clientAuth string) {
		// Relative paths are relative to the file, as in Prometheus.
		require.NoError(t, os.WriteFile(webCfg, []byte(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_ca_file: ca.crt
  client_auth_type: `+clientAuth+`
`), 0o600))
	}
	writeWebConfig("VerifyClientCertIfGiven")

	// A broken file stops the start with an error that names the flag.
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o600))
	code, out := tidemark(t, nil, "serve", "--web.listen-address="+freeAddr(t), "--storage.path="+filepath.Join(dir, "bad-data"), "--web.config.file="+bad)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "--web.config.file")

	addr := freeAddr(t)
	var log syncBuffer
	cmd := exec.Command(binary, "serve", "--web.listen-address="+addr, "--storage.path="+filepath.Join(dir, "data"),
		"--config.file="+writeConfig(t, dir), "--web.config.file="+webCfg)
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	base := "https://" + addr
	anon := httpsClient(t, dir, false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := anon.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "not ready over HTTPS: %v\n%s", err, log.String())
		time.Sleep(100 * time.Millisecond)
	}
	// Plain HTTP is not served.
	resp, err := http.Get("http://" + addr + "/-/healthy")
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}

	// Prometheus's remote-write client over HTTPS, trusting the CA.
	u, err := url.Parse(base + "/api/v1/write")
	require.NoError(t, err)
	rw, err := remote.NewWriteClient("tls", &remote.ClientConfig{
		URL:     &config_util.URL{URL: u},
		Timeout: model.Duration(10 * time.Second),
		HTTPClientConfig: config_util.HTTPClientConfig{
			Authorization: &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(acmeWrite)},
			TLSConfig:     config_util.TLSConfig{CAFile: filepath.Join(dir, "ca.crt")},
		},
	})
	require.NoError(t, err)
	now := time.Now()
	_, err = rw.Store(context.Background(), testutil.EncodeV1(t, []testutil.Series{{
		Labels: labels.FromStrings("__name__", "tls_written", "via", "https"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 42}},
	}}), 0)
	require.NoError(t, err)
	req, _ := http.NewRequest("GET", base+"/api/v1/query?query=tls_written&time="+url.QueryEscape(now.Format(time.RFC3339Nano)), nil)
	req.Header.Set("Authorization", "Bearer "+acmeRead)
	resp, err = anon.Do(req)
	require.NoError(t, err)
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, body.String())
	require.Contains(t, body.String(), `"via":"https"`)

	// Client certificates required: without one the handshake fails.
	writeWebConfig("RequireAndVerifyClientCert")
	_, err = httpsClient(t, dir, false).Get(base + "/-/healthy")
	require.Error(t, err, "a handshake without a client certificate must fail")
	resp, err = httpsClient(t, dir, true).Get(base + "/-/healthy")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	// Prometheus's client with a client certificate.
	rw, err = remote.NewWriteClient("mtls", &remote.ClientConfig{
		URL:     &config_util.URL{URL: u},
		Timeout: model.Duration(10 * time.Second),
		HTTPClientConfig: config_util.HTTPClientConfig{
			Authorization: &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(acmeWrite)},
			TLSConfig: config_util.TLSConfig{CAFile: filepath.Join(dir, "ca.crt"),
				CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key")},
		},
	})
	require.NoError(t, err)
	_, err = rw.Store(context.Background(), testutil.EncodeV1(t, []testutil.Series{{
		Labels: labels.FromStrings("__name__", "tls_written", "via", "mtls"), Samples: []testutil.Sample{{T: now.UnixMilli(), V: 43}},
	}}), 0)
	require.NoError(t, err)
}
