//! Checks the deployment files in `deploy/` against the real server: every `periodic-edge`
//! flag they use is one `periodic-edge --help` lists; listen ports match the published
//! container ports, services and probes; probe and metrics paths are routes the server has
//! and answer 200 from a real team edge and a real cloud started with the manifests' options;
//! the compose file wires six cluster-enabled Redis nodes, the cluster-create job, two team
//! edge replicas and the cloud; the Kubernetes manifests have a Secret for every token and TLS
//! file, an HPA on CPU over the edge Deployment, and Prometheus scrape annotations. TLS is the
//! default inside both: Redis nodes speak only TLS, the cloud serves HTTPS (probed over HTTPS),
//! the edges trust the CA that `deploy/gen-certs.sh` writes (every TLS file the deployment
//! mounts is one the script makes, and the real cloud serves with them), and a NetworkPolicy
//! admits only the team edge (and the Redis nodes themselves) to Redis.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BINARY, Edge, create_token};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_yaml_ng::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("deploy")
}

/// Runs `deploy/gen-certs.sh` into `out` and returns the names of the files it wrote.
fn gen_certs(out: &Path) -> BTreeSet<String> {
    let output = Command::new("sh").arg(deploy_dir().join("gen-certs.sh")).arg(out).output().unwrap();
    assert!(output.status.success(), "gen-certs.sh: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_dir(out).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// Every document of a YAML file, with `<<` merge keys applied.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            value.apply_merge().unwrap();
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().unwrap_or_else(|| panic!("expected a list, got {value:?}")).iter().map(text).collect()
}

/// The long options `periodic-edge --help` lists.
fn help_flags() -> BTreeSet<String> {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_string)
        .collect()
}

fn check_flags(where_: &str, args: &[String], known: &BTreeSet<String>) {
    for flag in args.iter().filter(|arg| arg.starts_with("--")) {
        assert!(known.contains(flag), "{where_} uses {flag}, which `periodic-edge --help` does not list");
    }
}

fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|arg| arg == flag).and_then(|index| args.get(index + 1)).map(String::as_str)
}

fn listen_port(where_: &str, args: &[String]) -> u16 {
    let listen = value_of(args, "--listen").unwrap_or_else(|| panic!("{where_} has no --listen"));
    assert!(listen.starts_with("0.0.0.0:"), "{where_}: inside a container the server listens on all interfaces: {listen}");
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

fn is_cloud(args: &[String]) -> bool {
    value_of(args, "--role") == Some("cloud")
}

/// The route table of the role: paths a probe or scraper may use.
fn get_routes(cloud: bool) -> BTreeSet<&'static str> {
    let routes = if cloud { periodic_edge::cloud::api::CLOUD_ROUTES } else { periodic_edge::api::ROUTES };
    routes.iter().filter(|(method, _)| *method == "get").map(|(_, path)| *path).collect()
}

/// `(host, port)` of every node in a `redis-cluster://a:1,b:2` URL.
fn cluster_nodes(url: &str) -> Vec<(String, u16)> {
    let nodes = url.strip_prefix("redis-cluster://").unwrap_or_else(|| panic!("not a redis-cluster URL: {url}"));
    nodes
        .split(',')
        .map(|node| {
            let (host, port) = node.rsplit_once(':').unwrap();
            (host.to_string(), port.parse().unwrap())
        })
        .collect()
}

#[test]
fn compose_file_wires_redis_cluster_two_edge_replicas_and_the_cloud() {
    let known = help_flags();
    let compose = documents(&deploy_dir().join("docker-compose.yml")).remove(0);
    let services = compose["services"].as_mapping().unwrap();
    let service = |name: &str| services.get(name).unwrap_or_else(|| panic!("no service {name}"));
    let declared_secrets: BTreeSet<String> = compose["secrets"].as_mapping().unwrap().keys().map(text).collect();
    // Every TLS secret is a file deploy/gen-certs.sh writes, where it writes it by default.
    let certs = tempfile::tempdir().unwrap();
    let generated = gen_certs(certs.path());
    let mut tls_secrets = BTreeSet::new();
    for (name, secret) in compose["secrets"].as_mapping().unwrap() {
        if let Some(file) = text(&secret["file"]).strip_prefix("./secrets/tls/") {
            assert!(generated.contains(file), "secret {} is {file}, which gen-certs.sh does not write ({generated:?})", text(name));
            tls_secrets.insert(text(name));
        }
    }
    let service_secrets_of = |definition: &Value| -> BTreeSet<String> { definition.get("secrets").map(strings).unwrap_or_default().into_iter().collect() };

    let mut team_edges = Vec::new();
    let mut clouds = BTreeMap::new();
    for (name, definition) in services {
        let name = text(name);
        let image = definition.get("image").map(text).unwrap_or_default();
        if !image.starts_with("periodic-edge") {
            continue;
        }
        let args = strings(&definition["command"]);
        check_flags(&format!("compose service {name}"), &args, &known);
        let port = listen_port(&name, &args);
        let published = strings(&definition["ports"]);
        assert!(published.iter().any(|mapping| mapping.starts_with("127.0.0.1:") && mapping.ends_with(&format!(":{port}"))), "{name}: publishes {published:?}, listens on {port}");
        let service_secrets = service_secrets_of(definition);
        for path in args.iter().filter_map(|arg| arg.strip_prefix("/run/secrets/")) {
            assert!(service_secrets.contains(path) && declared_secrets.contains(path), "{name}: secret {path} is not mounted or not declared");
        }
        if is_cloud(&args) {
            clouds.insert(name, port);
        } else {
            team_edges.push((name, args));
        }
    }
    assert_eq!(clouds.len(), 1, "one cloud tier");
    assert!(team_edges.len() >= 2, "at least two team edge replicas");

    let create = text(&service("redis-cluster-create")["command"].as_sequence().unwrap()[2]);
    assert!(create.contains("--cluster create") && create.contains("--cluster-replicas 1"), "{create}");
    // redis-cli reaches TLS-only nodes with the CA it mounts.
    assert!(create.matches("redis-cli --tls --cacert /run/secrets/tls-ca").count() == 2, "{create}");
    assert!(service_secrets_of(service("redis-cluster-create")).contains("tls-ca"));
    let (cloud_name, _) = clouds.iter().next().unwrap();
    let cloud_args = strings(&service(cloud_name)["command"]);
    for flag in ["--tls-cert", "--tls-key"] {
        let secret = value_of(&cloud_args, flag).and_then(|path| path.strip_prefix("/run/secrets/")).unwrap_or_else(|| panic!("the cloud serves HTTPS: {flag} /run/secrets/…"));
        assert!(tls_secrets.contains(secret), "cloud {flag}: {secret} is not a generated file");
    }
    for (name, args) in &team_edges {
        let nodes = cluster_nodes(value_of(args, "--store").unwrap());
        assert_eq!(nodes.len(), 6, "{name} lists every node");
        for (host, port) in &nodes {
            let node = text(&service(host)["command"].as_sequence().unwrap()[2]);
            for needle in [
                "--port 0".to_string(),
                format!("--tls-port {port}"),
                "--tls-cluster yes".into(),
                "--tls-replication yes".into(),
                "--cluster-enabled yes".into(),
                "--cluster-node-timeout 1000".into(),
                "--appendonly yes".into(),
                "--cluster-preferred-endpoint-type hostname".into(),
            ] {
                assert!(node.contains(&needle), "{host} lacks {needle}: {node}");
            }
            for path in node.split_whitespace().filter_map(|word| word.strip_prefix("/run/secrets/")) {
                assert!(service_secrets_of(service(host)).contains(path) && tls_secrets.contains(path), "{host}: {path} is not a mounted generated file");
            }
            let health = strings(&service(host)["healthcheck"]["test"]).join(" ");
            assert!(health.contains("redis-cli --tls --cacert /run/secrets/tls-ca"), "{host}: {health}");
            assert!(create.contains(&format!("{host}:{port}")), "the cluster-create job omits {host}:{port}");
        }
        let depends = &service(name)["depends_on"];
        assert_eq!(text(&depends["redis-cluster-create"]["condition"]), "service_completed_successfully", "{name} starts after the cluster is formed");
        let cloud_url = value_of(args, "--cloud-url").unwrap();
        let (host, port) = cloud_url.strip_prefix("https://").unwrap_or_else(|| panic!("{name}: the cloud is reached over HTTPS: {cloud_url}")).split_once(':').unwrap();
        assert_eq!(clouds.get(host), Some(&port.parse::<u16>().unwrap()), "{name}: --cloud-url {cloud_url} is not the cloud service's port");
        assert!(args.contains(&"--redis-tls".to_string()), "{name}: Redis over TLS");
        for flag in ["--redis-ca-file", "--cloud-ca-file"] {
            assert_eq!(value_of(args, flag), Some("/run/secrets/tls-ca"), "{name}: {flag} is the generated CA");
        }
    }
}

/// One Deployment's container, as the checks need it.
struct Workload {
    name: String,
    labels: BTreeMap<String, String>,
    args: Vec<String>,
    port_name: String,
    port: u16,
    probes: Vec<String>,
    /// `scheme` of each probe (`HTTP` when absent).
    probe_schemes: Vec<String>,
    annotations: BTreeMap<String, String>,
    secret_files: BTreeMap<String, (String, String)>,
}

fn mapping_of_strings(value: &Value) -> BTreeMap<String, String> {
    value.as_mapping().map(|map| map.iter().map(|(k, v)| (text(k), text(v))).collect()).unwrap_or_default()
}

fn workload(deployment: &Value) -> Workload {
    let name = text(&deployment["metadata"]["name"]);
    let template = &deployment["spec"]["template"];
    let pod = &template["spec"];
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    let port = &container["ports"][0];
    let mut probes = Vec::new();
    let mut probe_schemes = Vec::new();
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(&get["port"]), text(&port["name"]), "{name}: {probe} uses the named port");
        probes.push(text(&get["path"]));
        probe_schemes.push(get.get("scheme").map_or_else(|| "HTTP".to_string(), text));
    }
    assert!(!container["resources"]["requests"]["cpu"].is_null(), "{name}: CPU requests (the HPA scales on CPU utilisation of the request)");
    // Files under a secret volume's mount: path -> (secret name, key).
    let mut secret_files = BTreeMap::new();
    for mount in container["volumeMounts"].as_sequence().unwrap() {
        let volume = pod["volumes"].as_sequence().unwrap().iter().find(|volume| volume["name"] == mount["name"]).unwrap();
        if let Some(secret) = volume.get("secret") {
            for item in secret["items"].as_sequence().unwrap() {
                let path = format!("{}/{}", text(&mount["mountPath"]), text(&item["path"]));
                secret_files.insert(path, (text(&secret["secretName"]), text(&item["key"])));
            }
        }
    }
    Workload {
        name,
        labels: mapping_of_strings(&template["metadata"]["labels"]),
        args,
        port_name: text(&port["name"]),
        port: text(&port["containerPort"]).parse().unwrap(),
        probes,
        probe_schemes,
        annotations: mapping_of_strings(&template["metadata"]["annotations"]),
        secret_files,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_manifests_match_the_real_server() {
    let known = help_flags();
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(deploy_dir().join("k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            docs.extend(documents(&path));
        }
    }
    let of_kind = |kind: &str| docs.iter().filter(move |doc| doc["kind"] == kind).collect::<Vec<_>>();
    let secrets: BTreeMap<String, BTreeSet<String>> = of_kind("Secret")
        .into_iter()
        .map(|secret| (text(&secret["metadata"]["name"]), secret["stringData"].as_mapping().unwrap().keys().map(text).collect()))
        .collect();
    let workloads: Vec<Workload> = of_kind("Deployment").into_iter().map(workload).collect();
    assert_eq!(workloads.len(), 2, "a team edge and a cloud Deployment");

    for workload in &workloads {
        let name = &workload.name;
        check_flags(&format!("Deployment {name}"), &workload.args, &known);
        assert_eq!(listen_port(name, &workload.args), workload.port, "{name}: --listen and containerPort");
        let routes = get_routes(is_cloud(&workload.args));
        assert_eq!(workload.probes, ["/health/live", "/health/ready"], "{name}: liveness then readiness");
        for path in &workload.probes {
            assert!(routes.contains(path.as_str()), "{name}: probe path {path} is not a route");
        }
        assert_eq!(workload.annotations.get("prometheus.io/scrape").map(String::as_str), Some("true"), "{name}");
        assert_eq!(workload.annotations.get("prometheus.io/port"), Some(&workload.port.to_string()), "{name}: scrape port");
        let metrics_path = workload.annotations.get("prometheus.io/path").unwrap();
        assert!(routes.contains(metrics_path.as_str()), "{name}: scrape path {metrics_path} is not a route");
        for flag in ["--tokens", "--cloud-token-file", "--redis-ca-file", "--cloud-ca-file", "--tls-cert", "--tls-key"] {
            if let Some(path) = value_of(&workload.args, flag) {
                let (secret, key) = workload.secret_files.get(path).unwrap_or_else(|| panic!("{name}: {flag} {path} is not a file of a mounted Secret"));
                assert!(secrets.get(secret).is_some_and(|keys| keys.contains(key)), "{name}: Secret {secret} has no key {key}");
            }
        }
        // A Service selects the pods and targets the named port.
        let service = of_kind("Service")
            .into_iter()
            .find(|service| mapping_of_strings(&service["spec"]["selector"]).iter().all(|(k, v)| workload.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no Service selects {name}"));
        assert_eq!(text(&service["spec"]["ports"][0]["targetPort"]), workload.port_name, "{name}: Service targetPort");
        // A server that serves HTTPS is probed and scraped over HTTPS.
        let scheme = if workload.args.contains(&"--tls-cert".to_string()) { "HTTPS" } else { "HTTP" };
        assert_eq!(workload.probe_schemes, [scheme, scheme], "{name}: probe schemes");
        let scrape_scheme = workload.annotations.get("prometheus.io/scheme").map_or("http", String::as_str);
        assert_eq!(scrape_scheme.to_ascii_uppercase(), scheme, "{name}: prometheus.io/scheme");
    }

    let team = workloads.iter().find(|workload| !is_cloud(&workload.args)).unwrap();
    let cloud = workloads.iter().find(|workload| is_cloud(&workload.args)).unwrap();
    assert!(value_of(&team.args, "--store").unwrap().starts_with("redis-cluster://"));
    let hpa = of_kind("HorizontalPodAutoscaler");
    assert_eq!(hpa.len(), 1);
    assert_eq!((text(&hpa[0]["spec"]["scaleTargetRef"]["kind"]), text(&hpa[0]["spec"]["scaleTargetRef"]["name"])), ("Deployment".into(), team.name.clone()));
    assert_eq!(text(&hpa[0]["spec"]["metrics"][0]["resource"]["name"]), "cpu");
    let cloud_url = value_of(&team.args, "--cloud-url").unwrap();
    let cloud_service = of_kind("Service").into_iter().find(|service| text(&service["metadata"]["name"]) == "periodic-cloud").unwrap();
    assert_eq!(cloud_url, format!("https://periodic-cloud:{}", text(&cloud_service["spec"]["ports"][0]["port"])));
    assert!(cloud.args.contains(&"--tls-cert".to_string()) && cloud.args.contains(&"--tls-key".to_string()), "the cloud serves HTTPS");
    assert!(team.args.contains(&"--redis-tls".to_string()), "the team edge reaches Redis over TLS");
    let ca = value_of(&team.args, "--redis-ca-file").unwrap();
    assert_eq!(value_of(&team.args, "--cloud-ca-file"), Some(ca), "one CA for Redis and the cloud");

    // Only the team edge (and the Redis nodes themselves) may reach Redis.
    let store_ports: BTreeSet<u16> = cluster_nodes(value_of(&team.args, "--store").unwrap()).into_iter().map(|(_, port)| port).collect();
    let policies = of_kind("NetworkPolicy");
    assert_eq!(policies.len(), 1, "one NetworkPolicy, for Redis");
    let policy = &policies[0]["spec"];
    let redis_labels = mapping_of_strings(&policy["podSelector"]["matchLabels"]);
    assert_eq!(redis_labels.get("app.kubernetes.io/name").map(String::as_str), Some("redis-cluster"));
    assert!(strings(&policy["policyTypes"]).contains(&"Ingress".to_string()));
    let mut edge_ports = BTreeSet::new();
    for rule in policy["ingress"].as_sequence().unwrap() {
        let ports: BTreeSet<u16> = rule["ports"].as_sequence().unwrap().iter().map(|port| text(&port["port"]).parse().unwrap()).collect();
        for peer in rule["from"].as_sequence().unwrap() {
            assert!(peer.get("ipBlock").is_none() && peer.get("namespaceSelector").is_none(), "peers are pods of this namespace only: {peer:?}");
            let peer_labels = mapping_of_strings(&peer["podSelector"]["matchLabels"]);
            assert!(!peer_labels.is_empty(), "an empty podSelector would admit every pod");
            let selects = |labels: &BTreeMap<String, String>| peer_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
            assert!(!selects(&cloud.labels), "the cloud must not reach Redis");
            if selects(&team.labels) {
                edge_ports.extend(ports.iter().copied());
            } else {
                assert_eq!(peer_labels, redis_labels, "only the team edge and the Redis nodes are admitted: {peer:?}");
            }
        }
    }
    assert_eq!(edge_ports, store_ports, "the team edge is admitted on the ports --store uses");

    // The real servers, started with the manifests' options (minus addresses, paths and the
    // Redis store, which this test has no cluster for; TLS files made by gen-certs.sh in place
    // of the Secret's), answer the probe and scrape paths with the manifests' schemes.
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("tls");
    let generated = gen_certs(&certs);
    let tls_secret = of_kind("Secret").into_iter().find(|secret| text(&secret["metadata"]["name"]) == "periodic-tls").unwrap();
    for key in tls_secret["stringData"].as_mapping().unwrap().keys().map(text) {
        assert!(generated.contains(&key), "Secret periodic-tls holds {key}, which gen-certs.sh does not write");
    }
    let tokens = dir.path().join("tokens.json");
    create_token(&tokens, "probe", "read");
    let kept = |args: &[String]| -> Vec<String> {
        let mut kept = Vec::new();
        let mut index = 0;
        while index < args.len() {
            let flag = args[index].as_str();
            let takes_value = args.get(index + 1).is_some_and(|next| !next.starts_with("--"));
            let dropped = ["--listen", "--data", "--tokens", "--store", "--cloud-url", "--cloud-token-file", "--cloud-ca-file"].contains(&flag) || flag.starts_with("--redis-");
            let width = if takes_value { 2 } else { 1 };
            if !dropped {
                kept.extend(args[index..index + width].iter().map(|arg| match arg.strip_prefix("/etc/periodic-tls/") {
                    Some(file) => certs.join(file).display().to_string(),
                    None => arg.clone(),
                }));
            }
            index += width;
        }
        kept
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.pem")).unwrap()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    for workload in [team, cloud] {
        let args = kept(&workload.args);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = if workload.probe_schemes[0] == "HTTPS" {
            Edge::start_https(&dir.path().join(&workload.name), &tokens, &arg_refs)
        } else {
            Edge::start(&dir.path().join(&workload.name), &tokens, &arg_refs)
        };
        for path in workload.probes.iter().chain([workload.annotations.get("prometheus.io/path").unwrap()]) {
            let response = http.get(server.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}: {path} on the real server", workload.name);
        }
    }
}
