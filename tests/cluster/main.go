// Command credsmith-cluster is the local Kubernetes control plane for credsmith's
// tests and `credsmith dev`: embedded etcd, kube-apiserver and
// kube-controller-manager in one process, on loopback only, plus kubectl.
//
//	credsmith-cluster serve --dir DIR [--port N]   run until SIGTERM/SIGINT
//	credsmith-cluster kubectl ARGS...              kubectl (also when invoked as "kubectl")
//
// `serve` writes DIR/kubeconfig (admin, group system:masters) once /readyz is ok.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// The controllers a credential operator's tests rely on: owner-reference garbage
// collection, namespace deletion, ServiceAccounts and their tokens, the
// aggregated admin/edit/view ClusterRoles, and ResourceQuota usage (without it a
// quota's status.used is never computed and `count/secrets` is not enforced).
const controllers = "garbagecollector,namespace,serviceaccount,serviceaccount-token," +
	"root-ca-cert-publisher,clusterrole-aggregation,resourcequota"

// auditPolicy records every write (who, what, when; no bodies) so tests can prove
// which identity wrote what: e.g. that an old leader stopped writing. Reads and the
// components' own chatter are left out to keep the log small.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:apiserver", "system:kube-controller-manager"]
- level: None
  verbs: [get, list, watch]
- level: Metadata
`

func main() {
	if filepath.Base(os.Args[0]) == "kubectl" {
		os.Exit(runKubectl(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "credsmith-cluster:", err)
			os.Exit(1)
		}
	case "kubectl":
		os.Exit(runKubectl(os.Args[2:]))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: credsmith-cluster serve --dir DIR [--port N] | kubectl ARGS...")
	os.Exit(2)
}

func runKubectl(args []string) int {
	os.Args = append([]string{"kubectl"}, args...)
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
	return 0
}

type paths struct {
	dir, pki, etcd, saKey, tokens, kubeconfig, caFile, auditPolicy, auditLog string
}

func newPaths(dir string) paths {
	return paths{
		dir:        dir,
		pki:        filepath.Join(dir, "pki"),
		etcd:       filepath.Join(dir, "etcd"),
		saKey:      filepath.Join(dir, "pki", "service-account.key"),
		tokens:     filepath.Join(dir, "pki", "tokens.csv"),
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		// --cert-dir makes a self-signed serving certificate; the file doubles as its CA.
		caFile:      filepath.Join(dir, "pki", "apiserver.crt"),
		auditPolicy: filepath.Join(dir, "audit-policy.yaml"),
		auditLog:    filepath.Join(dir, "audit.log"),
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (etcd data, keys, kubeconfig); reused across restarts")
	port := fs.Int("port", 0, "kube-apiserver port on 127.0.0.1 (0: a free port)")
	fsync := fs.Bool("fsync", false, "let etcd fsync its writes (off: faster, and data loss on a machine crash is acceptable for a test cluster)")
	verbosity := fs.Int("v", 0, "log verbosity of the Kubernetes components")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	p := newPaths(abs)
	if err := os.MkdirAll(p.pki, 0o700); err != nil {
		return err
	}
	_ = os.Remove(p.kubeconfig) // written again once this run is ready
	token, err := ensureCredentials(p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.auditPolicy, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	if *port == 0 {
		if *port, err = freePort(); err != nil {
			return err
		}
	}

	etcd, etcdURL, err := startEtcd(p.etcd, !*fsync)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer closeWithin(etcd, 3*time.Second)

	// Both components apply logging options; the second must not fail on it.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged

	// The apiserver command installs the process-wide SIGTERM/SIGINT handler and
	// returns once it has shut down; the process then stops etcd and exits.
	apiserverDone := make(chan error, 1)
	go func() {
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(apiserverArgs(p, *port, etcdURL, *verbosity))
		apiserverDone <- cmd.Execute()
	}()

	server := "https://127.0.0.1:" + strconv.Itoa(*port)
	if err := waitReady(server, token, apiserverDone); err != nil {
		return err
	}
	if err := writeKubeconfig(p, server, token); err != nil {
		return err
	}

	go func() {
		// Runs until the process exits: its context is not tied to the signal handler.
		cmd := controllermanager.NewControllerManagerCommand()
		cmd.SetArgs(controllerManagerArgs(p, *verbosity))
		if err := cmd.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "credsmith-cluster: kube-controller-manager:", err)
		}
	}()
	fmt.Printf("credsmith-cluster: ready at %s, kubeconfig %s\n", server, p.kubeconfig)

	// The apiserver's own handler sees the same signal and starts its graceful
	// shutdown, which waits for long-running watches to drain. A test cluster need
	// not wait long for that: give it a few seconds, then stop etcd and exit.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err = <-apiserverDone:
	case <-stop:
		select {
		case err = <-apiserverDone:
		case <-time.After(3 * time.Second):
		}
	}
	_ = os.Remove(p.kubeconfig)
	return err
}

// closeWithin stops etcd, but exits anyway if clients still hold it open.
func closeWithin(e *embed.Etcd, limit time.Duration) {
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// ensureCredentials creates, once per state directory, the ServiceAccount signing
// key and the admin token, so that a restarted cluster keeps its identities.
func ensureCredentials(p paths) (string, error) {
	if _, err := os.Stat(p.saKey); errors.Is(err, os.ErrNotExist) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
		if err := os.WriteFile(p.saKey, pem.EncodeToMemory(block), 0o600); err != nil {
			return "", err
		}
	}
	if data, err := os.ReadFile(p.tokens); err == nil {
		return strings.SplitN(string(data), ",", 2)[0], nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	line := token + `,admin,admin-uid,"system:masters"` + "\n"
	return token, os.WriteFile(p.tokens, []byte(line), 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dataDir string, noFsync bool) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}

	cfg := embed.NewConfig()
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = noFsync
	// A test cluster's history need not grow without bound.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("not ready after 60s")
	}
	return e, clientURL.String(), nil
}

func apiserverArgs(p paths, port int, etcdURL string, verbosity int) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + p.pki,
		"--token-auth-file=" + p.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saKey,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--audit-policy-file=" + p.auditPolicy,
		"--audit-log-path=" + p.auditLog,
		"--audit-log-maxsize=200",
		"--audit-log-maxbackup=1",
		"--v=" + strconv.Itoa(verbosity),
	}
}

func controllerManagerArgs(p paths, verbosity int) []string {
	return []string{
		"--kubeconfig=" + p.kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caFile,
		"--use-service-account-credentials=false",
		"--profiling=false",
		"--v=" + strconv.Itoa(verbosity),
	}
}

// waitReady polls /readyz until the apiserver reports ready, or fails early if
// the apiserver command returned.
func waitReady(server, token string, apiserverDone <-chan error) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		// Only loopback, and the certificate is being created right now.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-apiserverDone:
			return fmt.Errorf("kube-apiserver stopped before it was ready: %v", err)
		case <-ctx.Done():
			return errors.New("kube-apiserver not ready after 3 minutes")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeKubeconfig(p paths, server, token string) error {
	ca, err := os.ReadFile(p.caFile)
	if err != nil {
		return err
	}
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: credsmith-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: credsmith-local
  context:
    cluster: credsmith-local
    user: admin
    namespace: default
current-context: credsmith-local
`, server, base64.StdEncoding.EncodeToString(ca), token)
	tmp := p.kubeconfig + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	// Atomic, so a reader that sees the file sees all of it.
	return os.Rename(tmp, p.kubeconfig)
}
