//! A kubelet's and kube-proxy's part, played with Docker on this machine: the pods of a
//! rendered overlay started from the built image, as close to a cluster as one host allows.
//!
//! Each Deployment's pod runs its container with the container's own `command`/`args`, `env`
//! (fieldRefs, configMapKeyRefs and `$(VAR)` expansion as Kubernetes does them), `envFrom`,
//! `securityContext` (user, read-only root filesystem, capabilities, no privilege escalation)
//! and `emptyDir` volumes (as tmpfs); resource limits do not apply. The kubelet's hostname is the
//! pod's name, and its Service links (`DETAILS_SERVICE_HOST`, `DETAILS_SERVICE_PORT`, ...) are
//! set as a kubelet sets them.
//!
//! Every container shares the host's network, where a cluster gives each pod its own. So:
//! - each pod gets a port of its own on the loopback, and its container the variables `PORT`
//!   and `BOOKINFO_HOST` (which `bookinfo serve` reads) to listen there: the only variables
//!   added to what a kubelet gives ([`pod_network`]); its probes' port (9080 or `http`) means
//!   that port;
//! - each Service is a TCP forwarder on a port of its own (kube-proxy's part), spreading
//!   connections over the pods its selector picks, round robin; the Service links carry that
//!   port, and `--add-host` makes the Service's names (`details`, `details.<ns>`,
//!   `details.<ns>.svc.cluster.local`) resolve to 127.0.0.1;
//! - an address outside the namespace (the collector's) is mapped to a given local address
//!   wherever a variable's value names it.
//!
//! Containers are labelled with the replay's id and removed when the [`Replay`] is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// `docker ARGS...`, its output.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap_or_else(|err| panic!("docker {args:?}: {err}"))
}

/// `docker ARGS...`, which must succeed; its standard output, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The rendered objects of one overlay.
pub struct Cluster {
    pub namespace: String,
    pub objects: Vec<Value>,
}

impl Cluster {
    /// `kubectl kustomize k8s/overlays/<overlay>`, parsed.
    pub fn render(overlay: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/overlays").join(overlay);
        let output = Command::new("kubectl").arg("kustomize").arg(&dir).output().expect("kubectl");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let objects: Vec<Value> =
            serde_saphyr::from_multiple::<Value>(&String::from_utf8_lossy(&output.stdout))
                .expect("YAML")
                .into_iter()
                .filter(|o| !o.is_null())
                .collect();
        Self::from_objects(objects)
    }

    /// The objects of a rendered overlay, its Namespace among them.
    pub fn from_objects(objects: Vec<Value>) -> Self {
        let namespace = objects
            .iter()
            .find(|o| o["kind"] == "Namespace")
            .and_then(|o| o["metadata"]["name"].as_str())
            .expect("the overlay's Namespace")
            .to_owned();
        Self { namespace, objects }
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// A Secret's values, decoded.
    fn secret(&self, name: &str) -> Vec<(String, String)> {
        let secret = self
            .of_kind("Secret")
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Secret {name}"));
        let decode = |value: &Value| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or(""))
                .expect("base64");
            String::from_utf8(bytes).expect("UTF-8")
        };
        let data = secret["data"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), decode(v)));
        let plain = secret["stringData"].as_object().into_iter().flatten();
        data.chain(plain.map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))).collect()
    }

    fn config_map(&self, name: &str) -> &serde_json::Map<String, Value> {
        self.of_kind("ConfigMap")
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .and_then(|o| o["data"].as_object())
            .unwrap_or_else(|| panic!("no ConfigMap {name} with data"))
    }
}

/// A pod of the replay.
pub struct Pod {
    pub deployment: String,
    /// As Kubernetes names it: `<deployment>-<template hash>-<5 characters>`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The host port standing for the container's port 9080.
    pub port: u16,
    /// The pod's spec, and its container's, as the manifest declares them.
    pub pod_spec: Value,
    pub spec: Value,
    /// `args` (or `command` and `args`), as the container runs them.
    pub args: Vec<String>,
    /// What the manifests give the container: `envFrom`, then `env`, resolved; in order.
    pub env: Vec<(String, String)>,
    /// What the kubelet adds: the Service links, lower than anything the manifests set.
    pub links: Vec<(String, String)>,
    /// Names that another variable's value refers to as `$(NAME)`.
    pub referenced: BTreeSet<String>,
    /// The Docker container, once started.
    container: String,
}

impl Pod {
    /// The container's output so far.
    pub fn logs(&self) -> String {
        let output = docker(&["logs", &self.container]);
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    }

    /// `docker stop` with Kubernetes' default grace (30 s); how long it took.
    pub fn stop(&self) -> Duration {
        let started = Instant::now();
        docker_ok(&["stop", "-t", "30", &self.container]);
        started.elapsed()
    }

    /// The container's exit code once stopped.
    pub fn exit_code(&self) -> i64 {
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &self.container]).parse().expect("a code")
    }

    /// Polls the readiness probe as the manifest declares it (`initialDelaySeconds`,
    /// `periodSeconds`, `timeoutSeconds`, 200 to 399 is ready) until it passes, or `within`.
    pub fn wait_ready(&self, within: Duration) -> Result<Duration, String> {
        let probe = &self.spec["readinessProbe"];
        let get = probe["httpGet"]
            .as_object()
            .ok_or_else(|| format!("{}: no httpGet readinessProbe", self.name))?;
        let path = get.get("path").and_then(Value::as_str).unwrap_or("/");
        let port = self.resolve_port(get.get("port").unwrap_or(&Value::Null))?;
        let seconds = |key: &str, default: u64| Duration::from_secs(probe[key].as_u64().unwrap_or(default));
        let (delay, period, timeout) =
            (seconds("initialDelaySeconds", 0), seconds("periodSeconds", 10), seconds("timeoutSeconds", 1));
        let started = Instant::now();
        std::thread::sleep(delay);
        let mut last = String::new();
        while started.elapsed() < within {
            match http_status(port, path, timeout) {
                Ok(status) if (200..400).contains(&status) => return Ok(started.elapsed()),
                Ok(status) => last = format!("status {status}"),
                Err(err) => last = err,
            }
            std::thread::sleep(period);
        }
        Err(format!("{}: not ready within {within:?} ({last}):\n{}", self.name, self.logs()))
    }

    /// A probe's port: the container's port 9080 (by number or name) is the pod's port.
    fn resolve_port(&self, port: &Value) -> Result<u16, String> {
        let declared = self.spec["ports"].as_array().cloned().unwrap_or_default();
        let number = match port {
            Value::Number(n) => n.as_u64(),
            Value::String(name) => {
                declared.iter().find(|p| p["name"] == name.as_str()).and_then(|p| p["containerPort"].as_u64())
            }
            _ => None,
        };
        match number {
            Some(9080) => Ok(self.port),
            other => Err(format!("{}: probe port {port} ({other:?}) is not the container's 9080", self.name)),
        }
    }
}

/// GET `path` on 127.0.0.1:`port`, its status, as a probe does it (HTTP/1.1, no keep-alive).
fn http_status(port: u16, path: &str, timeout: Duration) -> Result<u16, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n"
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| format!("not HTTP: {text:?}"))
}

/// A Service: a forwarder on its own port to the ports of the pods it selects.
pub struct Service {
    pub name: String,
    /// The forwarder's port on this machine.
    pub port: u16,
    /// The port the manifest declares (9080), and its name.
    pub declared_port: u64,
    pub port_name: Option<String>,
}

/// The variables a kubelet gives every container about the namespace's Services (its
/// "Service links"), here with the forwarders' addresses.
fn links(services: &[Service]) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for service in services {
        let prefix = service.name.to_ascii_uppercase().replace('-', "_");
        let (port, declared) = (service.port, service.declared_port);
        links.push((format!("{prefix}_SERVICE_HOST"), "127.0.0.1".to_owned()));
        links.push((format!("{prefix}_SERVICE_PORT"), port.to_string()));
        if let Some(name) = &service.port_name {
            links.push((
                format!("{prefix}_SERVICE_PORT_{}", name.to_ascii_uppercase().replace('-', "_")),
                port.to_string(),
            ));
        }
        links.push((format!("{prefix}_PORT"), format!("tcp://127.0.0.1:{port}")));
        let tcp = format!("{prefix}_PORT_{declared}_TCP");
        links.push((tcp.clone(), format!("tcp://127.0.0.1:{port}")));
        links.push((format!("{tcp}_PROTO"), "tcp".to_owned()));
        links.push((format!("{tcp}_PORT"), port.to_string()));
        links.push((format!("{tcp}_ADDR"), "127.0.0.1".to_owned()));
    }
    links
}

/// Accepts on 127.0.0.1:0 and forwards each connection to the next of `endpoints`.
fn forward(endpoints: Vec<u16>) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let next = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let target = endpoints[next.fetch_add(1, Ordering::Relaxed) % endpoints.len()];
            let Ok(outbound) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) else { continue };
            for (mut from, to) in
                [(inbound.try_clone(), outbound.try_clone()), (outbound.try_clone(), inbound.try_clone())]
                    .into_iter()
                    .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
            {
                std::thread::spawn(move || {
                    let mut to = to;
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        }
    });
    port
}

/// What stands for a pod's own network namespace on the shared one: where `bookinfo serve`
/// listens, the pod's port on the loopback. The only variables added to what a kubelet gives.
pub fn pod_network(pod: &Pod) -> [(String, String); 2] {
    [("PORT".into(), pod.port.to_string()), ("BOOKINFO_HOST".into(), "127.0.0.1".into())]
}

/// A port no one listens on now (the kernel's choice), for a pod to take.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a port").port()
}

/// One overlay, running.
pub struct Replay {
    pub cluster: Cluster,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    id: String,
}

impl Replay {
    /// Plans every pod of `cluster`: ports, names, resolved variables; `outside` maps addresses
    /// the variables name outside the namespace (`host:port`) to local ones. Nothing runs yet.
    pub fn plan(cluster: Cluster, outside: &[(&str, SocketAddr)]) -> Self {
        static REPLAYS: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}-{}",
            cluster.namespace,
            std::process::id(),
            REPLAYS.fetch_add(1, Ordering::Relaxed)
        );
        let mut pods = Vec::new();
        for deployment in cluster.of_kind("Deployment") {
            let name = deployment["metadata"]["name"].as_str().expect("a name");
            let template = &deployment["spec"]["template"];
            let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
            let containers = template["spec"]["containers"].as_array().expect("containers");
            assert_eq!(containers.len(), 1, "{name}: one container per pod");
            for replica in 0..replicas {
                let pod_name = format!(
                    "{name}-{}-{}",
                    hash(&template.to_string(), 10),
                    hash(&format!("{id}{replica}"), 5)
                );
                let labels = template["metadata"]["labels"]
                    .as_object()
                    .map(|l| {
                        l.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect()
                    })
                    .unwrap_or_default();
                pods.push(Pod {
                    deployment: name.to_owned(),
                    name: pod_name,
                    labels,
                    port: free_port(),
                    pod_spec: template["spec"].clone(),
                    spec: containers[0].clone(),
                    args: Vec::new(),
                    env: Vec::new(),
                    links: Vec::new(),
                    referenced: BTreeSet::new(),
                    container: String::new(),
                });
            }
        }
        let mut services = Vec::new();
        for service in cluster.of_kind("Service") {
            let name = service["metadata"]["name"].as_str().expect("a name").to_owned();
            let selector = service["spec"]["selector"].as_object().cloned().unwrap_or_default();
            let declared = &service["spec"]["ports"][0];
            let endpoints: Vec<u16> = pods
                .iter()
                .filter(|pod| {
                    selector.iter().all(|(k, v)| pod.labels.get(k).map(String::as_str) == v.as_str())
                })
                .map(|pod| pod.port)
                .collect();
            assert!(!endpoints.is_empty(), "Service {name} selects no pod");
            services.push(Service {
                name,
                port: forward(endpoints),
                declared_port: declared["port"].as_u64().expect("a port"),
                port_name: declared["name"].as_str().map(str::to_owned),
            });
        }
        for pod in &mut pods {
            pod.links = links(&services);
            let (env, mut referenced) = resolve_env(&cluster, pod, outside);
            // Kubernetes expands `$(VAR)` in command and args too.
            let mut args = Vec::new();
            for key in ["command", "args"] {
                for arg in pod.spec[key].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    args.push(expand(arg, &[pod.links.as_slice(), env.as_slice()].concat(), &mut referenced));
                }
            }
            (pod.env, pod.args, pod.referenced) = (env, args, referenced);
        }
        Self { cluster, pods, services, id }
    }

    /// Starts every pod's container from `image`, as planned.
    pub fn start(&mut self, image: &str) {
        let image_user = docker_ok(&["image", "inspect", "-f", "{{.Config.User}}", image]);
        for index in 0..self.pods.len() {
            let args = self.docker_run_args(&self.pods[index], image, &image_user);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.pods[index].container = docker_ok(&args);
        }
    }

    fn docker_run_args(&self, pod: &Pod, image: &str, image_user: &str) -> Vec<String> {
        let (spec, pod_spec) = (&pod.spec, &pod.pod_spec);
        let mut run: Vec<String> =
            ["run", "--detach", "--network", "host", "--hostname", &pod.name].map(str::to_owned).to_vec();
        run.extend([
            "--name".into(),
            format!("{}-{}", self.id, pod.name),
            "--label".into(),
            format!("bookinfo.replay={}", self.id),
        ]);
        for service in &self.services {
            let ns = &self.cluster.namespace;
            for host in [
                service.name.clone(),
                format!("{}.{ns}", service.name),
                format!("{}.{ns}.svc", service.name),
                format!("{}.{ns}.svc.cluster.local", service.name),
            ] {
                run.extend(["--add-host".into(), format!("{host}:127.0.0.1")]);
            }
        }
        // The kubelet's Service links, lower than anything the manifests set; then the pod's
        // own address, which on a shared network is a port of its own on the loopback.
        let set: BTreeSet<&str> = pod.env.iter().map(|(k, _)| k.as_str()).collect();
        let mut env: Vec<(String, String)> =
            pod.links.iter().filter(|(k, _)| !set.contains(k.as_str())).cloned().collect();
        env.extend(pod.env.iter().cloned());
        env.extend(pod_network(pod));
        for (key, value) in env {
            run.extend(["--env".into(), format!("{key}={value}")]);
        }

        let security = |key: &str| {
            let container = &spec["securityContext"][key];
            if container.is_null() { pod_spec["securityContext"][key].clone() } else { container.clone() }
        };
        if security("runAsNonRoot") == true {
            // What the kubelet checks before it starts the container.
            let user = security("runAsUser")
                .as_u64()
                .map(|u| u.to_string())
                .unwrap_or_else(|| image_user.to_owned());
            let uid = user.split(':').next().unwrap_or("");
            assert!(
                uid.parse::<u64>().is_ok_and(|u| u != 0),
                "{}: runAsNonRoot, but the image's user is {user:?}",
                pod.name
            );
        }
        match (security("runAsUser").as_u64(), security("runAsGroup").as_u64()) {
            (Some(user), Some(group)) => run.extend(["--user".into(), format!("{user}:{group}")]),
            (Some(user), None) => run.extend(["--user".into(), user.to_string()]),
            _ => {}
        }
        if spec["securityContext"]["readOnlyRootFilesystem"] == true {
            run.push("--read-only".into());
        }
        if spec["securityContext"]["allowPrivilegeEscalation"] == false {
            run.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        for cap in spec["securityContext"]["capabilities"]["drop"].as_array().into_iter().flatten() {
            run.extend(["--cap-drop".into(), cap.as_str().unwrap_or("").to_owned()]);
        }
        for cap in spec["securityContext"]["capabilities"]["add"].as_array().into_iter().flatten() {
            run.extend(["--cap-add".into(), cap.as_str().unwrap_or("").to_owned()]);
        }
        let volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
        for mount in spec["volumeMounts"].as_array().into_iter().flatten() {
            let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("a declared volume");
            assert!(volume["emptyDir"].is_object(), "{}: only emptyDir volumes are replayed", pod.name);
            run.extend([
                "--tmpfs".into(),
                format!("{}:mode=1777", mount["mountPath"].as_str().unwrap_or("/")),
            ]);
        }
        let command = spec["command"].as_array();
        if let Some(first) = command.and_then(|c| c.first()).and_then(Value::as_str) {
            run.extend(["--entrypoint".into(), first.to_owned()]);
        }
        run.push(image.to_owned());
        // After `--entrypoint`, the rest of `command`, then `args`.
        run.extend(pod.args.iter().skip(usize::from(command.is_some())).cloned());
        run
    }

    /// Waits until every pod's readiness probe passes; the longest wait.
    pub fn wait_ready(&self, within: Duration) -> Duration {
        std::thread::scope(|scope| {
            let waits: Vec<_> =
                self.pods.iter().map(|pod| scope.spawn(move || pod.wait_ready(within))).collect();
            waits
                .into_iter()
                .map(|w| w.join().expect("a probe thread").unwrap_or_else(|err| panic!("{err}")))
                .max()
                .unwrap_or_default()
        })
    }

    /// The Service's URL on this machine.
    pub fn service_url(&self, name: &str, path: &str) -> String {
        let service =
            self.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no Service {name}"));
        format!("http://127.0.0.1:{}{path}", service.port)
    }

    pub fn pod(&self, deployment: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.deployment == deployment)
            .unwrap_or_else(|| panic!("no pod of {deployment}"))
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if self.pods.iter().all(|pod| pod.container.is_empty()) {
            return;
        }
        let listed = docker(&["ps", "-aq", "--filter", &format!("label=bookinfo.replay={}", self.id)]);
        let ids: Vec<String> =
            String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

/// The container's variables as Kubernetes gives them: `envFrom` first, then `env` in order
/// (a later one wins), each value's `$(NAME)` replaced by a variable defined before it (`$$` is
/// a `$`; an unknown name stays as written); and which names are referred to that way.
fn resolve_env(
    cluster: &Cluster,
    pod: &Pod,
    outside: &[(&str, SocketAddr)],
) -> (Vec<(String, String)>, BTreeSet<String>) {
    let (pod_spec, spec, pod_name) = (&pod.pod_spec, &pod.spec, pod.name.as_str());
    let mut env: Vec<(String, String)> = Vec::new();
    let mut referenced = BTreeSet::new();
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    for source in spec["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = source["secretRef"]["name"].as_str() {
            for (key, value) in cluster.secret(name) {
                set(&mut env, key, value);
            }
            continue;
        }
        let name = source["configMapRef"]["name"].as_str().expect("configMapRef or secretRef");
        for (key, value) in cluster.config_map(name) {
            set(&mut env, key.clone(), value.as_str().unwrap_or("").to_owned());
        }
    }
    for var in spec["env"].as_array().into_iter().flatten() {
        let key = var["name"].as_str().expect("a name").to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            // Against what is defined so far, the Service links below the rest.
            expand(value, &[pod.links.as_slice(), env.as_slice()].concat(), &mut referenced)
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod_name.to_owned(),
                "spec.nodeName" => "replay-node".to_owned(),
                "metadata.namespace" => cluster.namespace.clone(),
                "status.podIP" | "status.hostIP" => "127.0.0.1".to_owned(),
                "spec.serviceAccountName" => {
                    pod_spec["serviceAccountName"].as_str().unwrap_or("default").to_owned()
                }
                other => panic!("fieldRef {other} is not replayed"),
            }
        } else if let Some(reference) = var["valueFrom"]["secretKeyRef"].as_object() {
            let key = reference["key"].as_str().expect("a key");
            let secret = cluster.secret(reference["name"].as_str().expect("a Secret"));
            secret.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
        } else if let Some(reference) = var["valueFrom"]["configMapKeyRef"].as_object() {
            let map = cluster.config_map(reference["name"].as_str().expect("a ConfigMap"));
            map[reference["key"].as_str().expect("a key")].as_str().unwrap_or("").to_owned()
        } else {
            panic!("{key}: this kind of value is not replayed: {var}");
        };
        set(&mut env, key, value);
    }
    for (_, value) in &mut env {
        for (from, to) in outside {
            *value = value.replace(from, &to.to_string());
        }
    }
    (env, referenced)
}

/// Kubernetes' `$(NAME)` expansion against the variables defined so far.
fn expand(value: &str, env: &[(String, String)], referenced: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = rest.strip_prefix("$(").and_then(|r| r.split_once(')')) {
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => {
                    referenced.insert(name.to_owned());
                    out.push_str(v);
                }
                None => out.push_str(&rest[..name.len() + 3]),
            }
            rest = after;
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `len` characters of Kubernetes' name alphabet, from `text`.
fn hash(text: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            let c = ALPHABET[(state % ALPHABET.len() as u64) as usize];
            state = (state / ALPHABET.len() as u64) ^ state.rotate_left(17);
            char::from(c)
        })
        .collect()
}

#[test]
fn expansion_follows_kubernetes() {
    let env = vec![("A".to_owned(), "x".to_owned())];
    let mut referenced = BTreeSet::new();
    assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env, &mut referenced), "x-$(B)-$(A)-$");
    assert_eq!(referenced, BTreeSet::from(["A".to_owned()]));
}
