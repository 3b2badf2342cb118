// Command vcsimh runs govmomi's vCenter simulator (vcsim) as a test fixture
// for the vrelay vSphere locator.
//
// It builds a one-cluster vCenter inventory whose hosts carry chosen names,
// creates one powered-on VM (the appliance) on a chosen host, and with
// -cvms NAME@HOST,... more powered-on VMs (containerVMs) on the named
// hosts, with -outside NAME@HOST,... powered-on VMs in a resource pool and
// a VM folder of their own ("outside", not the appliance's), serves the SOAP API on /sdk, prints one JSON line describing the
// fixture (the containerVMs under "cvms"), then reads commands from stdin
// (one per line) and answers each with one JSON line on stdout:
//
//	relocate HOST       RelocateVM_Task(spec.host = HOST) for the appliance,
//	                    waits for the task; like vCenter's vMotion it posts
//	                    VmBeingHotMigratedEvent before and VmMigratedEvent
//	                    after (unless -no-events)
//	relocate-vm VM HOST the same for the VM named VM (a containerVM, or
//	                    the appliance); the answer names the VM
//	hint HOST           only post the appliance's VmBeingHotMigratedEvent
//	fail-migrate HOST   only post the appliance's VmFailedMigrateEvent
//	vmci CID            set the appliance's VMCI context id (vSocket CID)
//	where               the appliance's current runtime.host
//	where-vm VM         the runtime.host of the VM named VM
//	kick                terminate every client session (NotAuthenticated)
//	destroy-vm VM       power the VM named VM off and destroy it
//	                    (Destroy_Task): watchers see it leave
//	quit                shut down (EOF on stdin does the same)
//
// Every VM has the simulator's stock VMCI device; only the appliance's
// context id is ever set (-vmci-cid, vmci).
//
// Build offline against Debian's golang-github-vmware-govmomi-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsimh .
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type config struct {
	listen      string
	hosts       int
	hostNames   []string
	vmName      string
	on          string
	useTLS      bool
	certPath    string
	keyType     string
	user        string
	password    string
	sessionIdle time.Duration
	trace       bool
	vmciCID     int64
	noEvents    bool
	cvms        []cvmSpec
	outside     []cvmSpec
}

// cvmSpec is one -cvms entry: a containerVM and the host it starts on.
type cvmSpec struct {
	name string
	host string
}

// cvmLine describes one containerVM in the first line.
type cvmLine struct {
	Name  string `json:"name"`
	Moref string `json:"moref"`
	On    string `json:"on"`
}

// helloLine is the first line printed on stdout.
type helloLine struct {
	URL              string            `json:"url"`
	Hosts            []string          `json:"hosts"`
	HostMorefs       map[string]string `json:"host_morefs"`
	VM               string            `json:"vm"`
	VMMoref          string            `json:"vm_moref"`
	On               string            `json:"on"`
	CVMs             []cvmLine         `json:"cvms,omitempty"`
	Outside          []cvmLine         `json:"outside,omitempty"`
	User             string            `json:"user,omitempty"`
	ThumbprintSHA256 string            `json:"thumbprint_sha256,omitempty"`
	ThumbprintSHA1   string            `json:"thumbprint_sha1,omitempty"`
	Cert             string            `json:"cert,omitempty"`
}

// fixture is the running simulator plus an in-process client that talks to
// it without HTTP and without a login (the simulator's internal session).
type fixture struct {
	cfg    *config
	model  *simulator.Model
	server *simulator.Server
	client *vim25.Client
	vm     *fxVM                                   // the appliance
	vms    map[string]*fxVM                        // name -> VM, appliance too
	hosts  map[string]types.ManagedObjectReference // name -> moref
	names  map[string]string                       // moref value -> name
	apart  *object.ResourcePool                    // -outside VMs' pool
	apartF *object.Folder                          // ... and folder
}

// fxVM is one VM of the fixture: the simulator's object has no inventory
// path, so its name is kept alongside for events and answers.
type fxVM struct {
	name string
	obj  *object.VirtualMachine
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fatal(err)
	}

	// The simulator logs every WaitForUpdatesEx round; keep stderr readable.
	if !cfg.trace {
		log.SetOutput(io.Discard)
	}
	simulator.Trace = cfg.trace
	simulator.SessionIdleTimeout = cfg.sessionIdle

	fx, err := start(cfg)
	if err != nil {
		fatal(err)
	}
	defer fx.stop()

	hello := helloLine{
		URL:        fx.server.URL.Scheme + "://" + fx.server.URL.Host + fx.server.URL.Path,
		Hosts:      cfg.hostNames,
		HostMorefs: morefValues(fx.hosts),
		VM:         cfg.vmName,
		VMMoref:    fx.vm.obj.Reference().Value,
		On:         cfg.on,
		User:       cfg.user,
	}
	for _, c := range cfg.cvms {
		hello.CVMs = append(hello.CVMs, cvmLine{
			Name:  c.name,
			Moref: fx.vms[c.name].obj.Reference().Value,
			On:    c.host,
		})
	}
	for _, c := range cfg.outside {
		hello.Outside = append(hello.Outside, cvmLine{
			Name:  c.name,
			Moref: fx.vms[c.name].obj.Reference().Value,
			On:    c.host,
		})
	}
	if cfg.useTLS {
		der := fx.server.Certificate().Raw
		s256, s1 := sha256.Sum256(der), sha1.Sum(der)
		hello.ThumbprintSHA256 = thumbprint(s256[:])
		hello.ThumbprintSHA1 = thumbprint(s1[:])
		hello.Cert = cfg.certPath
	}
	emit(hello)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	for {
		select {
		case <-sig:
			return
		case line, ok := <-lines:
			if !ok {
				return
			}
			if !fx.command(strings.Fields(line)) {
				return
			}
		}
	}
}

func parseFlags() (*config, error) {
	cfg := new(config)
	var names, cvms, outside string
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "address to serve on (port 0 picks a free one)")
	flag.IntVar(&cfg.hosts, "hosts", 3, "number of ESX hosts in the cluster")
	flag.StringVar(&names, "host-names", "", "comma-separated host names (default esx-a,esx-b,...)")
	flag.StringVar(&cfg.vmName, "vm", "vch-appliance", "name of the VM to create")
	flag.StringVar(&cfg.on, "on", "", "host to place the VM on (default: the first host)")
	flag.BoolVar(&cfg.useTLS, "tls", false, "serve https with a freshly generated certificate")
	flag.StringVar(&cfg.certPath, "cert", "", "with -tls: write the certificate PEM here")
	flag.StringVar(&cfg.keyType, "key", "rsa2048", "with -tls: key type, rsa2048 or ecdsa256")
	flag.StringVar(&cfg.user, "user", "", "require this user name (default: accept any non-empty credentials)")
	flag.StringVar(&cfg.password, "password", "", "require this password (with -user)")
	flag.DurationVar(&cfg.sessionIdle, "session-idle", 0, "expire sessions idle this long (0 = never)")
	flag.BoolVar(&cfg.trace, "trace", false, "log SOAP traffic and simulator messages to stderr")
	flag.Int64Var(&cfg.vmciCID, "vmci-cid", 0, "give the VM a VMCI device with this context id (0 = none)")
	flag.BoolVar(&cfg.noEvents, "no-events", false, "relocate posts no migration events (as the bare simulator)")
	flag.StringVar(&cvms, "cvms", "", "extra powered-on VMs (containerVMs): NAME@HOST,NAME@HOST,...")
	flag.StringVar(&outside, "outside", "", "powered-on VMs in another resource pool and folder: NAME@HOST,...")
	flag.Parse()

	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if names != "" {
		cfg.hostNames = strings.Split(names, ",")
		hostsSet := false
		flag.Visit(func(f *flag.Flag) { hostsSet = hostsSet || f.Name == "hosts" })
		if hostsSet && cfg.hosts != len(cfg.hostNames) {
			return nil, fmt.Errorf("-hosts %d does not match %d -host-names", cfg.hosts, len(cfg.hostNames))
		}
		cfg.hosts = len(cfg.hostNames)
	} else {
		for i := 0; i < cfg.hosts; i++ {
			cfg.hostNames = append(cfg.hostNames, defaultHostName(i))
		}
	}
	if cfg.hosts < 1 {
		return nil, errors.New("need at least one host")
	}
	seen := map[string]bool{}
	for _, n := range cfg.hostNames {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("host names must be non-empty and unique: %q", names)
		}
		seen[n] = true
	}
	if cfg.on == "" {
		cfg.on = cfg.hostNames[0]
	}
	if !seen[cfg.on] {
		return nil, fmt.Errorf("-on %q is not one of the hosts", cfg.on)
	}
	taken := map[string]bool{cfg.vmName: true}
	for _, list := range []string{cvms, outside} {
		if list == "" {
			continue
		}
		for _, item := range strings.Split(list, ",") {
			at := strings.LastIndexByte(item, '@')
			if at <= 0 || at == len(item)-1 {
				return nil, fmt.Errorf("-cvms %q: want NAME@HOST", item)
			}
			c := cvmSpec{name: item[:at], host: item[at+1:]}
			if taken[c.name] {
				return nil, fmt.Errorf("-cvms: VM name %q is used twice", c.name)
			}
			if !seen[c.host] {
				return nil, fmt.Errorf("-cvms %q: %q is not one of the hosts", item, c.host)
			}
			taken[c.name] = true
			if list == outside {
				cfg.outside = append(cfg.outside, c)
			} else {
				cfg.cvms = append(cfg.cvms, c)
			}
		}
	}
	if (cfg.user == "") != (cfg.password == "") {
		return nil, errors.New("-user and -password go together")
	}
	if cfg.certPath != "" && !cfg.useTLS {
		return nil, errors.New("-cert needs -tls")
	}
	if cfg.keyType != "rsa2048" && cfg.keyType != "ecdsa256" {
		return nil, fmt.Errorf("-key %q: want rsa2048 or ecdsa256", cfg.keyType)
	}
	return cfg, nil
}

// defaultHostName gives esx-a ... esx-z, then esx-26, esx-27, ...
func defaultHostName(i int) string {
	if i < 26 {
		return "esx-" + string(rune('a'+i))
	}
	return fmt.Sprintf("esx-%d", i)
}

func start(cfg *config) (*fixture, error) {
	ctx := context.Background()

	// One datacenter, one cluster with cfg.hosts hosts, one datastore,
	// no standalone host and no stock VMs.
	// 0.24.2's VmMigratedEvent message template does not parse (a "}"
	// short) and PostEvent would panic on it.
	for i := range esx.EventInfo {
		if esx.EventInfo[i].Key == "VmMigratedEvent" {
			esx.EventInfo[i].FullFormat = "Migration of virtual machine {{.Vm.Name}} from {{.SourceHost.Name}} to {{.Host.Name}} completed"
		}
	}
	model := simulator.VPX()
	model.Host = 0
	model.ClusterHost = cfg.hosts
	model.Machine = 0
	if err := model.Create(); err != nil {
		return nil, fmt.Errorf("model: %v", err)
	}

	fx := &fixture{
		cfg:   cfg,
		model: model,
		vms:   map[string]*fxVM{},
		hosts: map[string]types.ManagedObjectReference{},
		names: map[string]string{},
	}

	// simulator.Service is a soap.RoundTripper: this client needs no HTTP
	// and runs as the simulator's internal (always authenticated) session.
	client, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		model.Remove()
		return nil, err
	}
	fx.client = client

	if err := fx.renameHosts(ctx, cfg.hostNames); err != nil {
		model.Remove()
		return nil, err
	}
	if fx.vm, err = fx.createVM(ctx, cfg.vmName, fx.hosts[cfg.on]); err != nil {
		model.Remove()
		return nil, err
	}
	if cfg.vmciCID != 0 {
		if err := fx.setVMCI(fx.vm, cfg.vmciCID); err != nil {
			model.Remove()
			return nil, err
		}
	}
	for _, c := range cfg.cvms {
		if _, err := fx.createVM(ctx, c.name, fx.hosts[c.host]); err != nil {
			model.Remove()
			return nil, err
		}
	}
	for _, c := range cfg.outside {
		if _, err := fx.createVMApart(ctx, c.name, fx.hosts[c.host]); err != nil {
			model.Remove()
			return nil, err
		}
	}

	listen := &url.URL{Host: cfg.listen}
	if cfg.user != "" {
		// SessionManager.Login compares against Service.Listen.User; when it
		// is unset any non-empty user name and password are accepted.
		listen.User = url.UserPassword(cfg.user, cfg.password)
	}
	model.Service.Listen = listen

	if cfg.useTLS {
		cert, err := newCertificate(cfg.listen, cfg.keyType)
		if err != nil {
			model.Remove()
			return nil, err
		}
		if cfg.certPath != "" {
			data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
			if err := os.WriteFile(cfg.certPath, data, 0o644); err != nil {
				model.Remove()
				return nil, err
			}
		}
		// Without Certificates the simulator falls back to a built-in
		// RSA-1024 test certificate, which OpenSSL 3 will not verify
		// ("EE certificate key too weak").
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	fx.server, err = newServer(model.Service)
	if err != nil {
		model.Remove()
		return nil, err
	}
	return fx, nil
}

// newServer wraps Service.NewServer, which panics when it cannot listen.
func newServer(svc *simulator.Service) (srv *simulator.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return svc.NewServer(), nil
}

// renameHosts gives the model's cluster hosts (DC0_C0_H0, ...) the wanted
// names. The simulator does not implement HostSystem.Rename_Task, so the
// change is applied to the inventory directly, before any client connects.
func (fx *fixture) renameHosts(ctx context.Context, names []string) error {
	hosts, err := find.NewFinder(fx.client).HostSystemList(ctx, "*")
	if err != nil {
		return err
	}
	if len(hosts) != len(names) {
		return fmt.Errorf("model has %d hosts, want %d", len(hosts), len(names))
	}
	// Creation order (host-23, host-31, ...), so names[0] is the first host.
	sort.Slice(hosts, func(i, j int) bool { return morefLess(hosts[i].Reference(), hosts[j].Reference()) })

	for i, h := range hosts {
		ref := h.Reference()
		simulator.Map.Update(simulator.Map.Get(ref), []types.PropertyChange{
			{Name: "name", Val: names[i]},
			{Name: "summary.config.name", Val: names[i]},
		})
		fx.hosts[names[i]] = ref
		fx.names[ref.Value] = names[i]
	}
	return nil
}

// createVM creates VM NAME on HOST, powers it on and adds it to fx.vms.
func (fx *fixture) createVM(ctx context.Context, name string, host types.ManagedObjectReference) (*fxVM, error) {
	return fx.createVMIn(ctx, name, host, false)
}

// createVMApart is createVM in the "outside" resource pool (a child of
// HOST's) and VM folder, made on first use: not the appliance's.
func (fx *fixture) createVMApart(ctx context.Context, name string, host types.ManagedObjectReference) (*fxVM, error) {
	return fx.createVMIn(ctx, name, host, true)
}

// createVMIn creates VM NAME on HOST, in the outside pool and folder when
// APART, powers it on and adds it to fx.vms.
func (fx *fixture) createVMIn(ctx context.Context, name string, host types.ManagedObjectReference, apart bool) (*fxVM, error) {
	finder := find.NewFinder(fx.client)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return nil, err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := object.NewHostSystem(fx.client, host).ResourcePool(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := finder.DefaultDatastore(ctx)
	if err != nil {
		return nil, err
	}

	folder := folders.VmFolder
	if apart {
		if fx.apart == nil {
			if fx.apart, err = pool.Create(ctx, "outside", types.DefaultResourceConfigSpec()); err != nil {
				return nil, err
			}
			if fx.apartF, err = folder.CreateFolder(ctx, "outside"); err != nil {
				return nil, err
			}
		}
		pool, folder = fx.apart, fx.apartF
	}

	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs:  1,
		MemoryMB: 512,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + ds.Name() + "]"},
	}
	task, err := folder.CreateVM(ctx, spec, pool, object.NewHostSystem(fx.client, host))
	if err != nil {
		return nil, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("CreateVM %s: %v", name, err)
	}
	vm := &fxVM{name: name, obj: object.NewVirtualMachine(fx.client, info.Result.(types.ManagedObjectReference))}

	task, err = vm.obj.PowerOn(ctx)
	if err != nil {
		return nil, err
	}
	if err := task.Wait(ctx); err != nil {
		return nil, err
	}
	fx.vms[name] = vm
	return vm, nil
}

// setVMCI gives the VM's VMCI device (the simulator's stock one, id -1)
// context id CID, the VM's vSocket CID, and tells property collectors.
func (fx *fixture) setVMCI(v *fxVM, cid int64) error {
	vm, ok := simulator.Map.Get(v.obj.Reference()).(*simulator.VirtualMachine)
	if !ok {
		return errors.New("VM object not found")
	}
	found := false
	for i, d := range vm.Config.Hardware.Device {
		if dev, ok := d.(*types.VirtualMachineVMCIDevice); ok {
			// A copy: every VM's stock devices are the same
			// pointers (simulator/esx.VirtualDevice), so setting the
			// id in place would give every VM this CID.
			c := *dev
			c.Id = cid
			vm.Config.Hardware.Device[i] = &c
			found = true
		}
	}
	if !found {
		return errors.New("the VM has no VMCI device")
	}
	simulator.Map.Update(vm, []types.PropertyChange{
		{Name: "config.hardware.device", Val: vm.Config.Hardware.Device},
	})
	return nil
}

// command runs one stdin command; it returns false when the harness should exit.
func (fx *fixture) command(args []string) bool {
	if len(args) == 0 {
		return true
	}
	ctx := context.Background()

	switch {
	case args[0] == "quit" && len(args) == 1:
		return false
	case args[0] == "where" && len(args) == 1:
		host, err := fx.where(ctx, fx.vm)
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"host": host})
	case args[0] == "where-vm" && len(args) == 2:
		vm, err := fx.lookupVM(args[1])
		var host string
		if err == nil {
			host, err = fx.where(ctx, vm)
		}
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"vm": vm.name, "host": host})
	case args[0] == "relocate" && len(args) == 2:
		from, ms, err := fx.relocate(ctx, fx.vm, args[1])
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"relocated": args[1], "from": from, "ms": ms})
	case args[0] == "relocate-vm" && len(args) == 3:
		vm, err := fx.lookupVM(args[1])
		var from string
		var ms float64
		if err == nil {
			from, ms, err = fx.relocate(ctx, vm, args[2])
		}
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"vm": vm.name, "relocated": args[2], "from": from, "ms": ms})
	case args[0] == "vmci" && len(args) == 2:
		cid, err := strconv.ParseInt(args[1], 10, 64)
		if err == nil {
			err = fx.setVMCI(fx.vm, cid)
		}
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"vmci": cid})
	case args[0] == "hint" && len(args) == 2:
		if err := fx.hint(ctx, fx.vm, args[1]); err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"hinted": args[1]})
	case args[0] == "fail-migrate" && len(args) == 2:
		if err := fx.failMigrate(ctx, fx.vm, args[1]); err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"failed": args[1]})
	case args[0] == "destroy-vm" && len(args) == 2:
		vm, err := fx.lookupVM(args[1])
		if err == nil {
			err = fx.destroy(ctx, vm)
		}
		if err != nil {
			emitError(err)
			return true
		}
		delete(fx.vms, vm.name)
		emit(map[string]interface{}{"destroyed": vm.name})
	case args[0] == "kick" && len(args) == 1:
		n, err := fx.kick(ctx)
		if err != nil {
			emitError(err)
			return true
		}
		emit(map[string]interface{}{"kicked": n})
	default:
		emitError(fmt.Errorf("unknown command %q (want: relocate HOST, relocate-vm VM HOST, hint HOST, fail-migrate HOST, vmci CID, where, where-vm VM, destroy-vm VM, kick, quit)", strings.Join(args, " ")))
	}
	return true
}

// lookupVM finds a VM of the fixture (a containerVM or the appliance) by name.
func (fx *fixture) lookupVM(name string) (*fxVM, error) {
	vm, ok := fx.vms[name]
	if !ok {
		return nil, fmt.Errorf("no VM named %q", name)
	}
	return vm, nil
}

// where gives the name of VM's current runtime.host.
func (fx *fixture) where(ctx context.Context, v *fxVM) (string, error) {
	var vm mo.VirtualMachine
	if err := v.obj.Properties(ctx, v.obj.Reference(), []string{"runtime.host"}, &vm); err != nil {
		return "", err
	}
	if vm.Runtime.Host == nil {
		return "", errors.New("runtime.host is unset")
	}
	return fx.names[vm.Runtime.Host.Value], nil
}

// relocate moves VM to host NAME the way a vMotion looks to a watcher.
func (fx *fixture) relocate(ctx context.Context, vm *fxVM, name string) (from string, ms float64, err error) {
	ref, ok := fx.hosts[name]
	if !ok {
		return "", 0, fmt.Errorf("no host named %q", name)
	}
	if from, err = fx.where(ctx, vm); err != nil {
		return "", 0, err
	}
	if !fx.cfg.noEvents {
		if err = fx.hint(ctx, vm, name); err != nil {
			return "", 0, err
		}
	}
	t0 := time.Now()
	task, err := vm.obj.Relocate(ctx, types.VirtualMachineRelocateSpec{Host: &ref}, types.VirtualMachineMovePriorityDefaultPriority)
	if err != nil {
		return "", 0, err
	}
	if err := task.Wait(ctx); err != nil {
		return "", 0, err
	}
	ms = float64(time.Since(t0).Microseconds()) / 1000
	if !fx.cfg.noEvents {
		src := fx.hosts[from]
		ev := &types.VmMigratedEvent{
			VmEvent:    types.VmEvent{Event: fx.vmEvent(vm, ref)},
			SourceHost: types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: from}, Host: src},
		}
		if err = fx.post(ctx, ev); err != nil {
			return "", 0, err
		}
	}
	return from, ms, nil
}

// vmEvent is the Event part every event about VM carries, on host HOST.
func (fx *fixture) vmEvent(vm *fxVM, host types.ManagedObjectReference) types.Event {
	return types.Event{
		Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: fx.names[host.Value]}, Host: host},
		Vm:   &types.VmEventArgument{EntityEventArgument: types.EntityEventArgument{Name: vm.name}, Vm: vm.obj.Reference()},
	}
}

// migrationEvent posts the event MK makes of VM's current host event
// and the destination host NAME.
func (fx *fixture) migrationEvent(ctx context.Context, vm *fxVM, name string,
	mk func(types.VmEvent, types.HostEventArgument) types.BaseEvent) error {
	ref, ok := fx.hosts[name]
	if !ok {
		return fmt.Errorf("no host named %q", name)
	}
	cur := fx.hosts[fx.mustWhere(ctx, vm)]
	return fx.post(ctx, mk(types.VmEvent{Event: fx.vmEvent(vm, cur)},
		types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: name}, Host: ref}))
}

// hint posts VM's VmBeingHotMigratedEvent towards host NAME, as vCenter
// does when a vMotion starts.
func (fx *fixture) hint(ctx context.Context, vm *fxVM, name string) error {
	return fx.migrationEvent(ctx, vm, name, func(e types.VmEvent, dest types.HostEventArgument) types.BaseEvent {
		return &types.VmBeingHotMigratedEvent{VmEvent: e, DestHost: dest}
	})
}

// failMigrate posts VM's VmFailedMigrateEvent towards host NAME, as
// vCenter does when a vMotion there fails.
func (fx *fixture) failMigrate(ctx context.Context, vm *fxVM, name string) error {
	return fx.migrationEvent(ctx, vm, name, func(e types.VmEvent, dest types.HostEventArgument) types.BaseEvent {
		return &types.VmFailedMigrateEvent{VmEvent: e, DestHost: dest,
			Reason: types.LocalizedMethodFault{LocalizedMessage: "the vMotion failed"}}
	})
}

// mustWhere is where without the error ("" when unknown).
func (fx *fixture) mustWhere(ctx context.Context, vm *fxVM) string {
	h, _ := fx.where(ctx, vm)
	return h
}

// post runs EventManager.PostEvent.
func (fx *fixture) post(ctx context.Context, ev types.BaseEvent) error {
	req := types.PostEvent{This: *fx.client.ServiceContent.EventManager, EventToPost: ev}
	_, err := methods.PostEvent(ctx, fx.client, &req)
	return err
}

// destroy powers VM off and destroys it, as an administrator deleting
// a containerVM would.
func (fx *fixture) destroy(ctx context.Context, vm *fxVM) error {
	task, err := vm.obj.PowerOff(ctx)
	if err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return err
	}
	task, err = vm.obj.Destroy(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// kick terminates every client session, as a vCenter restart or an
// administrator would; clients then get NotAuthenticated.
func (fx *fixture) kick(ctx context.Context) (int, error) {
	sm := object.NewCommon(fx.client, *fx.client.ServiceContent.SessionManager)
	var m mo.SessionManager
	if err := sm.Properties(ctx, sm.Reference(), []string{"sessionList"}, &m); err != nil {
		return 0, err
	}
	var keys []string
	for _, s := range m.SessionList {
		keys = append(keys, s.Key)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	req := types.TerminateSession{This: sm.Reference(), SessionId: keys}
	if _, err := methods.TerminateSession(ctx, fx.client, &req); err != nil {
		return 0, err
	}
	return len(keys), nil
}

func (fx *fixture) stop() {
	// Not Server.Close: it waits for every handler to return, and the
	// simulator's WaitForUpdatesEx ignores client disconnects, so a pending
	// long poll would hold it for up to maxWaitSeconds. Stop accepting, drop
	// the connections and let process exit take the remaining handlers.
	if fx.server != nil {
		fx.server.Listener.Close()
		fx.server.CloseClientConnections()
	}
	fx.model.Remove()
}

// newCertificate makes a self-signed certificate for localhost, 127.0.0.1,
// ::1 and the listen host, usable as its own CA (curl --cacert).
func newCertificate(listen, keyType string) (tls.Certificate, error) {
	var key interface{}
	var pub interface{}
	usage := x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	switch keyType {
	case "ecdsa256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		key, pub = k, &k.PublicKey
	default:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return tls.Certificate{}, err
		}
		key, pub = k, &k.PublicKey
		usage |= x509.KeyUsageKeyEncipherment
	}

	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vcsimh", Organization: []string{"vrelay test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if ip == nil && host != "" && host != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// thumbprint formats a digest the way vSphere shows thumbprints (AA:BB:...).
func thumbprint(sum []byte) string {
	hex := make([]string, len(sum))
	for i, c := range sum {
		hex[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(hex, ":")
}

// morefLess orders "host-9" before "host-23" (same prefix, numeric suffix).
func morefLess(a, b types.ManagedObjectReference) bool {
	if len(a.Value) != len(b.Value) {
		return len(a.Value) < len(b.Value)
	}
	return a.Value < b.Value
}

func morefValues(m map[string]types.ManagedObjectReference) map[string]string {
	out := make(map[string]string, len(m))
	for name, ref := range m {
		out[name] = ref.Value
	}
	return out
}

func emit(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	os.Stdout.Write(append(b, '\n'))
}

func emitError(err error) {
	emit(map[string]string{"error": err.Error()})
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "vcsimh: %v\n", err)
	os.Exit(1)
}
