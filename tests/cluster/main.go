// Command credsmith-cluster is the local Kubernetes control plane for credsmith's
// tests and `credsmith dev`: embedded etcd, kube-apiserver, kube-controller-manager
// (with the workload controllers) and kube-scheduler in one process, on loopback
// only, plus kubectl. Workloads roll out for real on simulated nodes: `serve` runs
// KWOK (sigs.k8s.io/kwok) as a child process, which makes the pods on its nodes
// Running and Ready without running any container.
//
//	credsmith-cluster serve --dir DIR [--port N] [--kwok PATH]   run until SIGTERM/SIGINT
//	credsmith-cluster kubectl ARGS...                            kubectl (also when invoked as "kubectl")
//
// `serve` writes DIR/kubeconfig (admin, group system:masters) once /readyz is ok
// and the KWOK nodes (kwok-node-0, kwok-node-1) exist.
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
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// The controllers a credential operator's tests rely on: owner-reference garbage
// collection, namespace deletion, ServiceAccounts and their tokens, the
// aggregated admin/edit/view ClusterRoles, ResourceQuota usage (without it a
// quota's status.used is never computed and `count/secrets` is not enforced), and
// the workload controllers, so that Deployments (through ReplicaSets),
// StatefulSets and DaemonSets create their pods and roll out on the KWOK nodes.
const controllers = "garbagecollector,namespace,serviceaccount,serviceaccount-token," +
	"root-ca-cert-publisher,clusterrole-aggregation,resourcequota," +
	"deployment,replicaset,statefulset,daemonset"

// kwokStagesFile, next to the kwok binary, holds the stages KWOK plays on its nodes
// and their pods (kwok has no built-in defaults): build.sh takes kwokctl's defaults
// (node/fast, node/heartbeat, pod/fast) from the pinned sigs.k8s.io/kwok module.
const kwokStagesFile = "kwok-stages.yaml"

// The simulated nodes: the annotation is what kwok is told to manage. No taints,
// so that ordinary pods schedule; room for plenty of pods.
const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	kwokNodes      = 2
)

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
	// The components' own admin kubeconfig: DIR/kubeconfig is the readiness
	// signal, written last.
	adminKubeconfig, schedulerConfig, kwokConfig string
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

		adminKubeconfig: filepath.Join(dir, "pki", "admin.kubeconfig"),
		schedulerConfig: filepath.Join(dir, "kube-scheduler.yaml"),
		kwokConfig:      filepath.Join(dir, "kwok.yaml"),
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (etcd data, keys, kubeconfig); reused across restarts")
	port := fs.Int("port", 0, "kube-apiserver port on 127.0.0.1 (0: a free port)")
	fsync := fs.Bool("fsync", false, "let etcd fsync its writes (off: faster, and data loss on a machine crash is acceptable for a test cluster)")
	verbosity := fs.Int("v", 0, "log verbosity of the Kubernetes components")
	kwokPath := fs.String("kwok", "", `the kwok binary for simulated nodes (default: "kwok" next to this executable; without it, no nodes)`)
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
	if err := writeKubeconfig(p.adminKubeconfig, p.caFile, server, token); err != nil {
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
	if err := startScheduler(p); err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	if kwok := findKwok(*kwokPath); kwok == "" {
		fmt.Println("credsmith-cluster: no kwok binary (--kwok), so no nodes: pods stay Pending")
	} else {
		stopKwok, err := startKwok(p, kwok)
		if err != nil {
			return fmt.Errorf("kwok: %w", err)
		}
		defer stopKwok()
		if err := ensureKwokNodes(p); err != nil {
			return fmt.Errorf("kwok nodes: %w", err)
		}
	}
	if err := writeKubeconfig(p.kubeconfig, p.caFile, server, token); err != nil {
		return err
	}
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
		// It taints every new Node not-ready until the node-lifecycle controller
		// (not run here: no kubelets) lifts it: the KWOK nodes would stay unschedulable.
		"--disable-admission-plugins=TaintNodesByCondition",
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
		"--kubeconfig=" + p.adminKubeconfig,
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

func writeKubeconfig(path, caFile, server, token string) error {
	ca, err := os.ReadFile(caFile)
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
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	// Atomic, so a reader that sees the file sees all of it.
	return os.Rename(tmp, path)
}

// startScheduler runs kube-scheduler in this process. Not through its command:
// that would install the process-wide signal handler a second time (a panic), so
// the options are built here and it runs until the process exits.
func startScheduler(p paths) error {
	config := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
leaderElection:
  leaderElect: false
enableProfiling: false
`, p.adminKubeconfig)
	if err := os.WriteFile(p.schedulerConfig, []byte(config), 0o600); err != nil {
		return err
	}
	opts := scheduleroptions.NewOptions()
	opts.ConfigFile = p.schedulerConfig
	opts.SecureServing.BindPort = 0 // no health/metrics endpoint of its own
	ctx := context.Background()
	cc, sched, err := scheduler.Setup(ctx, opts)
	if err != nil {
		return err
	}
	go func() {
		if err := scheduler.Run(ctx, cc, sched); err != nil {
			fmt.Fprintln(os.Stderr, "credsmith-cluster: kube-scheduler:", err)
		}
	}()
	return nil
}

// findKwok is the kwok binary to run: the flag's, or "kwok" next to this
// executable; "" if there is none.
func findKwok(flagValue string) string {
	path := flagValue
	if path == "" {
		self, err := os.Executable()
		if err != nil {
			return ""
		}
		path = filepath.Join(filepath.Dir(self), "kwok")
	}
	if info, err := os.Stat(path); err != nil || info.IsDir() {
		return ""
	}
	return path
}

// startKwok runs kwok as a child process with its output on ours; the returned
// function stops it. It also dies with this process, even one that is killed.
func startKwok(p paths, kwok string) (func(), error) {
	stages, err := os.ReadFile(filepath.Join(filepath.Dir(kwok), kwokStagesFile))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.kwokConfig, stages, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(kwok,
		"--kubeconfig="+p.adminKubeconfig,
		"--config="+p.kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokAnnotation+"=fake",
		// Pod IPs outside the service range (kwok's default is 10.0.0.0/24 too).
		"--cidr=10.244.0.0/16",
		// No --node-port nor --server-address: kwok then listens on no port at all,
		// so that several clusters on one machine do not collide.
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// kwok reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok) besides --config: not
	// a user's own.
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+filepath.Join(p.dir, "kwok"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		// Pdeathsig fires when the thread that started the child exits: keep this
		// goroutine on its thread for the child's whole life.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		close(exited)
		fmt.Fprintln(os.Stderr, "credsmith-cluster: kwok exited:", err)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}, nil
}

// ensureKwokNodes creates the simulated nodes unless they exist (a restarted
// cluster keeps them, and any change made to them).
func ensureKwokNodes(p paths) error {
	config, err := clientcmd.BuildConfigFromFlags("", p.adminKubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	for i := range kwokNodes {
		name := "kwok-node-" + strconv.Itoa(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels: map[string]string{
					"type":                   "kwok",
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
				},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
