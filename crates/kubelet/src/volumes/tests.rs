use super::*;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, DownwardAPIProjection,
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    KeyToPath, NFSVolumeSource, ObjectFieldSelector, PodSpec, ProjectedVolumeSource, Secret,
    SecretProjection, SecretVolumeSource, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

/// A client that is never reached: objects come from the seeded cache.
fn manager(dir: &Path) -> VolumeManager {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(cfg).unwrap();
    VolumeManager::new(dir.join("pods"), client, "cluster.local".into())
        .with_memory_backed_volumes(false)
}

fn cm(data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn vol(name: &str) -> Volume {
    Volume {
        name: name.into(),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn pod(volumes: Vec<Volume>, mounts: Vec<VolumeMount>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            volumes: Some(volumes),
            containers: vec![Container {
                name: "app".into(),
                volume_mounts: Some(mounts),
                termination_message_path: Some("/dev/termination-log".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn all_volumes(host: &Path) -> Vec<Volume> {
    let field = |path: &str, fp: &str| DownwardAPIVolumeFile {
        path: path.into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: fp.into(),
        }),
        ..Default::default()
    };
    vec![
        Volume {
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..vol("scratch")
        },
        Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                default_mode: Some(0o600),
                ..Default::default()
            }),
            ..vol("cfg")
        },
        Volume {
            secret: Some(SecretVolumeSource {
                secret_name: Some("creds".into()),
                items: Some(vec![KeyToPath {
                    key: "pw".into(),
                    path: "auth/password".into(),
                    mode: Some(0o400),
                }]),
                ..Default::default()
            }),
            ..vol("creds")
        },
        Volume {
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![
                    field("labels", "metadata.labels"),
                    field("name", "metadata.name"),
                ]),
                ..Default::default()
            }),
            ..vol("info")
        },
        Volume {
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: "cfg".into(),
                            items: Some(vec![KeyToPath {
                                key: "mode".into(),
                                path: "conf/mode".into(),
                                mode: None,
                            }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: "creds".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        downward_api: Some(DownwardAPIProjection {
                            items: Some(vec![field("ns", "metadata.namespace")]),
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..vol("all")
        },
        Volume {
            host_path: Some(HostPathVolumeSource {
                path: host.to_string_lossy().into_owned(),
                type_: Some("Directory".into()),
            }),
            ..vol("host")
        },
    ]
}

fn seed(vm: &VolumeManager, mode: &str) {
    vm.objects()
        .insert_config_map("ns", "cfg", Some(cm(&[("mode", mode), ("level", "3")])));
    let secret = Secret {
        data: Some([("pw".to_string(), ByteString(b"hunter2".to_vec()))].into()),
        ..Default::default()
    };
    vm.objects().insert_secret("ns", "creds", Some(secret));
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn sets_up_every_volume_type_and_mounts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = manager(tmp.path());
    seed(&vm, "prod");
    let host = tmp.path().join("host");
    fs::create_dir(&host).unwrap();
    let mut sub = mount("scratch", "/work");
    sub.sub_path = Some("a/b".into());
    let mut cfg_mount = mount("cfg", "/etc/cfg");
    cfg_mount.read_only = Some(false);
    let mounts = vec![
        cfg_mount,
        mount("creds", "/secrets"),
        mount("info", "/info"),
        mount("all", "/all"),
        mount("host", "/host"),
        sub,
    ];
    let p = pod(all_volumes(&host), mounts);
    vm.setup(&p).await.unwrap();
    vm.setup(&p).await.unwrap(); // idempotent

    let vols = tmp.path().join("pods/uid-1/volumes");
    let cfg = vols.join("kubernetes.io~configmap/cfg");
    assert_eq!(read(cfg.join("mode")), "prod");
    assert_eq!(
        fs::metadata(cfg.join("level")).unwrap().mode() & 0o777,
        0o600
    );
    let secret = vols.join("kubernetes.io~secret/creds");
    assert_eq!(read(secret.join("auth/password")), "hunter2");
    assert_eq!(
        fs::metadata(secret.join("auth/password")).unwrap().mode() & 0o777,
        0o400
    );
    let info = vols.join("kubernetes.io~downward-api/info");
    assert_eq!(read(info.join("labels")), "app=\"web\"");
    assert_eq!(read(info.join("name")), "web");
    let all = vols.join("kubernetes.io~projected/all");
    assert_eq!(read(all.join("conf/mode")), "prod");
    assert_eq!(read(all.join("pw")), "hunter2");
    assert_eq!(read(all.join("ns")), "ns");
    let scratch = vols.join("kubernetes.io~empty-dir/scratch");
    assert_eq!(fs::metadata(&scratch).unwrap().mode() & 0o777, 0o777);

    let c = &p.spec.as_ref().unwrap().containers[0];
    let got = vm.mounts(&p, c, &["10.42.0.4".into()], &[]).unwrap();
    let summary: Vec<(&str, bool)> = got
        .iter()
        .map(|m| (m.container_path.as_str(), m.readonly))
        .collect();
    assert_eq!(
        summary,
        [
            ("/etc/cfg", true), // configMap volumes are always read-only
            ("/secrets", true),
            ("/info", true),
            ("/all", true),
            ("/host", false),
            ("/work", false),
            ("/etc/hosts", false),
            ("/dev/termination-log", false),
        ]
    );
    assert_eq!(got[4].host_path, host.to_string_lossy());
    assert!(got[5]
        .host_path
        .ends_with("kubernetes.io~empty-dir/scratch/a/b"));
    assert!(Path::new(&got[5].host_path).is_dir());
    assert!(read(PathBuf::from(&got[6].host_path)).contains("10.42.0.4\tweb\n"));
    assert!(got[7].host_path.contains("/pods/uid-1/containers/app/"));

    // An update of the ConfigMap reaches the files on the next sync.
    seed(&vm, "staging");
    vm.setup(&p).await.unwrap();
    assert_eq!(read(cfg.join("mode")), "staging");
    assert_eq!(read(all.join("conf/mode")), "staging");

    // Deleting it later keeps the last contents and the pod going.
    vm.objects().insert_config_map("ns", "cfg", None);
    vm.setup(&p).await.unwrap();
    assert_eq!(read(cfg.join("mode")), "staging");
    assert_eq!(vm.mounts(&p, c, &[], &[]).unwrap().len(), 7);

    assert_eq!(vm.pod_dirs(), ["uid-1"]);
    vm.cleanup("uid-1").await.unwrap();
    assert!(!tmp.path().join("pods/uid-1").exists());
    assert!(host.exists(), "hostPath content is never removed");
    assert!(vm.pod_dirs().is_empty());
    vm.cleanup("uid-1").await.unwrap(); // twice is fine
}

#[tokio::test]
async fn missing_objects_and_bad_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = manager(tmp.path());
    vm.objects().insert_config_map("ns", "missing", None);
    vm.objects().insert_secret("ns", "nosecret", None);
    vm.objects()
        .insert_config_map("ns", "cfg", Some(cm(&[("a", "1")])));
    // A fresh pod each time: volumes set up before keep their contents.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let check = |v: Volume| {
        let mut p = pod(vec![v], vec![]);
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        p.metadata.uid = Some(format!("uid-{i}"));
        let vm = &vm;
        async move { vm.setup(&p).await }
    };
    let cm_vol = |name: &str, optional: bool, items: Option<Vec<KeyToPath>>| Volume {
        config_map: Some(ConfigMapVolumeSource {
            name: name.into(),
            optional: Some(optional),
            items,
            ..Default::default()
        }),
        ..vol("cfg")
    };
    let err = check(cm_vol("missing", false, None)).await.unwrap_err();
    assert_eq!(err.volume, "cfg");
    assert_eq!(
        err.message,
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"missing\" not found"
    );
    check(cm_vol("missing", true, None)).await.unwrap();
    let bad_key = Some(vec![KeyToPath {
        key: "zz".into(),
        path: "z".into(),
        mode: None,
    }]);
    assert_eq!(
        check(cm_vol("cfg", false, bad_key)).await.unwrap_err().message,
        "MountVolume.SetUp failed for volume \"cfg\" : configmap references non-existent config key: zz"
    );
    let secret = Volume {
        secret: Some(SecretVolumeSource {
            secret_name: Some("nosecret".into()),
            ..Default::default()
        }),
        ..vol("s")
    };
    assert_eq!(
        check(secret).await.unwrap_err().message,
        "MountVolume.SetUp failed for volume \"s\" : secret \"nosecret\" not found"
    );
    let host = Volume {
        host_path: Some(HostPathVolumeSource {
            path: "/nonexistent/skiff".into(),
            type_: Some("Directory".into()),
        }),
        ..vol("h")
    };
    assert_eq!(
        check(host).await.unwrap_err().message,
        "MountVolume.SetUp failed for volume \"h\" : hostPath /nonexistent/skiff doesn't exist"
    );
    let nfs = Volume {
        nfs: Some(NFSVolumeSource {
            path: "/x".into(),
            server: "nfs".into(),
            read_only: None,
        }),
        ..vol("n")
    };
    assert_eq!(
        check(nfs).await.unwrap_err().message,
        "MountVolume.SetUp failed for volume \"n\" : volume type is not supported on this node yet"
    );
}

#[tokio::test]
async fn mount_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = manager(tmp.path());
    let scratch = Volume {
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..vol("scratch")
    };
    let p = pod(vec![scratch], vec![]);
    vm.setup(&p).await.unwrap();
    let try_mount = |m: VolumeMount, env: &[api::KeyValue]| {
        let c = Container {
            name: "app".into(),
            volume_mounts: Some(vec![m]),
            ..Default::default()
        };
        vm.mounts(&p, &c, &[], env)
    };
    assert_eq!(
        try_mount(mount("other", "/x"), &[]).unwrap_err(),
        "cannot find volume \"other\" to mount into container \"app\""
    );
    let mut m = mount("scratch", "/x");
    m.sub_path = Some("../etc".into());
    assert_eq!(
        try_mount(m, &[]).unwrap_err(),
        "unable to provision SubPath `../etc`: must not contain '..'"
    );
    let mut m = mount("scratch", "/x");
    m.sub_path_expr = Some("logs/$(POD_NAME)/$(MISSING)".into());
    let env = [api::KeyValue {
        key: "POD_NAME".into(),
        value: "web".into(),
    }];
    assert_eq!(
        try_mount(m.clone(), &env).unwrap_err(),
        "missing value for MISSING"
    );
    m.sub_path_expr = Some("logs/$(POD_NAME)".into());
    let ok = try_mount(m, &env).unwrap();
    assert!(ok[0].host_path.ends_with("scratch/logs/web"));
    // No pod IP yet and not hostNetwork: no /etc/hosts mount.
    assert_eq!(ok.len(), 1);
    let mut m = mount("scratch", "/x");
    m.mount_propagation = Some("Sideways".into());
    assert_eq!(
        try_mount(m, &[]).unwrap_err(),
        "invalid MountPropagation mode: \"Sideways\""
    );
    let mut m = mount("scratch", "/x");
    m.recursive_read_only = Some("Enabled".into());
    m.read_only = Some(true);
    assert!(try_mount(m, &[])
        .unwrap_err()
        .contains("not supported by the runtime"));
    // A container mounting its own /etc/hosts gets no managed one.
    let c = Container {
        name: "app".into(),
        volume_mounts: Some(vec![mount("scratch", "/etc/hosts")]),
        ..Default::default()
    };
    let got = vm.mounts(&p, &c, &["10.42.0.4".into()], &[]).unwrap();
    assert_eq!(got.len(), 1);
}

#[test]
fn tmpfs_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _g = rt.enter();
    let vm = manager(tmp.path());
    let mut p = pod(vec![], vec![]);
    assert_eq!(vm.tmpfs_size(&p, None), None);
    vm.set_node_allocatable([("memory".to_string(), Quantity("1Gi".into()))].into());
    assert_eq!(vm.tmpfs_size(&p, None), Some(1 << 30));
    assert_eq!(
        vm.tmpfs_size(&p, Some(&Quantity("64Mi".into()))),
        Some(64 << 20)
    );
    assert_eq!(
        vm.tmpfs_size(&p, Some(&Quantity("4Gi".into()))),
        Some(1 << 30)
    );
    let c = &mut p.spec.as_mut().unwrap().containers[0];
    c.resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some([("memory".to_string(), Quantity("128Mi".into()))].into()),
        ..Default::default()
    });
    assert_eq!(vm.tmpfs_size(&p, None), Some(128 << 20));
    assert_eq!(
        vm.tmpfs_size(&p, Some(&Quantity("64Mi".into()))),
        Some(64 << 20)
    );
}

/// Needs root: `cargo test -p kubelet --lib volumes::tests -- --ignored`.
#[tokio::test]
#[ignore]
async fn memory_empty_dir_is_tmpfs_and_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = manager(tmp.path()).with_memory_backed_volumes(true);
    seed(&vm, "x");
    let mem = Volume {
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("8Mi".into())),
        }),
        ..vol("mem")
    };
    let secret = Volume {
        secret: Some(SecretVolumeSource {
            secret_name: Some("creds".into()),
            ..Default::default()
        }),
        ..vol("creds")
    };
    let p = pod(vec![mem, secret], vec![]);
    vm.setup(&p).await.unwrap();
    vm.setup(&p).await.unwrap();
    let vols = tmp.path().join("pods/uid-1/volumes");
    let mem_dir = vols.join("kubernetes.io~empty-dir/mem");
    assert!(mount::is_mount_point(&mem_dir).unwrap());
    let secret_dir = vols.join("kubernetes.io~secret/creds");
    assert!(mount::is_mount_point(&secret_dir).unwrap());
    assert_eq!(read(secret_dir.join("pw")), "hunter2");
    let df = std::process::Command::new("df")
        .arg("-B1")
        .arg(&mem_dir)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&df.stdout).contains("8388608"),
        "{df:?}"
    );
    vm.cleanup("uid-1").await.unwrap();
    assert!(mount::mounts_under(tmp.path()).unwrap().is_empty());
    assert!(!tmp.path().join("pods/uid-1").exists());
}

/// A fake API server: `(method, path)` -> `(status, JSON body)`; counts calls.
mod fake_api {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::Full;

    pub type Routes = Arc<Mutex<HashMap<(String, String), (u16, serde_json::Value)>>>;

    pub fn client(routes: Routes, calls: Arc<AtomicUsize>) -> kube::Client {
        let svc = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
            let key = (req.method().to_string(), req.uri().path().to_string());
            let found = routes.lock().unwrap().get(&key).cloned();
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let (code, body) = found.unwrap_or_else(|| {
                    (
                        404,
                        super::status(404, "the server could not find the requested resource"),
                    )
                });
                let resp = hyper::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        kube::Client::new(svc, "default")
    }
}

fn status(code: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "NotFound", "code": code})
}

fn route(routes: &fake_api::Routes, method: &str, path: &str, code: u16, body: serde_json::Value) {
    routes
        .lock()
        .unwrap()
        .insert((method.into(), path.into()), (code, body));
}

fn pvc_json(name: &str, pv: Option<&str>) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"volumeName": pv.unwrap_or("")},
        "status": {"phase": if pv.is_some() { "Bound" } else { "Pending" }}})
}

#[tokio::test]
async fn claims_tokens_and_object_cache_against_fake_api() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let routes = fake_api::Routes::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let client = fake_api::client(routes.clone(), calls.clone());
    let vm = VolumeManager::new(tmp.path().join("pods"), client, "cluster.local".into())
        .with_memory_backed_volumes(false);

    let data = tmp.path().join("pv-data");
    let local = tmp.path().join("local");
    fs::create_dir(&local).unwrap();
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/persistentvolumeclaims/data",
        200,
        pvc_json("data", Some("pv-host")),
    );
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/persistentvolumeclaims/fast",
        200,
        pvc_json("fast", Some("pv-local")),
    );
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/persistentvolumeclaims/pending",
        200,
        pvc_json("pending", None),
    );
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/persistentvolumeclaims/remote",
        200,
        pvc_json("remote", Some("pv-nfs")),
    );
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/persistentvolumeclaims/gone",
        404,
        status(404, "persistentvolumeclaims \"gone\" not found"),
    );
    let pv = |name: &str, source: serde_json::Value| {
        let mut spec = serde_json::json!({"capacity": {"storage": "1Gi"}});
        spec.as_object_mut()
            .unwrap()
            .extend(source.as_object().unwrap().clone());
        serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec})
    };
    route(
        &routes,
        "GET",
        "/api/v1/persistentvolumes/pv-host",
        200,
        pv(
            "pv-host",
            serde_json::json!({"hostPath": {"path": data.to_str().unwrap(), "type": "DirectoryOrCreate"}}),
        ),
    );
    route(
        &routes,
        "GET",
        "/api/v1/persistentvolumes/pv-local",
        200,
        pv(
            "pv-local",
            serde_json::json!({"local": {"path": local.to_str().unwrap()}}),
        ),
    );
    route(
        &routes,
        "GET",
        "/api/v1/persistentvolumes/pv-nfs",
        200,
        pv(
            "pv-nfs",
            serde_json::json!({"nfs": {"server": "s", "path": "/x"}}),
        ),
    );

    let claim = |vol_name: &str, claim: &str, read_only: bool| Volume {
        persistent_volume_claim: Some(
            k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                claim_name: claim.into(),
                read_only: Some(read_only),
            },
        ),
        ..vol(vol_name)
    };
    let p = pod(
        vec![claim("data", "data", false), claim("fast", "fast", true)],
        vec![mount("data", "/data"), mount("fast", "/fast")],
    );
    vm.setup(&p).await.unwrap();
    assert!(data.is_dir(), "DirectoryOrCreate made the PV directory");
    let c = &p.spec.as_ref().unwrap().containers[0];
    let m = vm.mounts(&p, c, &[], &[]).unwrap();
    assert_eq!(
        (m[0].host_path.as_str(), m[0].readonly),
        (data.to_str().unwrap(), false)
    );
    assert_eq!(
        (m[1].host_path.as_str(), m[1].readonly),
        (local.to_str().unwrap(), true)
    );
    let before = calls.load(Ordering::SeqCst);
    vm.setup(&p).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "bound claims are not fetched again"
    );

    let err = |v: Volume| {
        let mut p = pod(vec![v], vec![]);
        p.metadata.uid = Some(format!("uid-{}", calls.load(Ordering::SeqCst)));
        let vm = &vm;
        async move { vm.setup(&p).await.unwrap_err().message }
    };
    assert_eq!(
        err(claim("d", "pending", false)).await,
        "Unable to attach or mount volumes: unmounted volumes=[d], unattached volumes=[], \
         failed to process volumes=[d]: error processing PVC ns/pending: PVC is not bound"
    );
    assert_eq!(
        err(claim("d", "gone", false)).await,
        "Unable to attach or mount volumes: unmounted volumes=[d], unattached volumes=[], \
         failed to process volumes=[d]: error processing PVC ns/gone: failed to fetch PVC from API server: \
         persistentvolumeclaims \"gone\" not found"
    );
    assert_eq!(
        err(claim("d", "remote", false)).await,
        "MountVolume.SetUp failed for volume \"pv-nfs\" : persistent volume \"pv-nfs\": \
         volume type is not supported on this node yet (hostPath and local are)"
    );

    // ConfigMaps come through the API once per TTL.
    route(
        &routes,
        "GET",
        "/api/v1/namespaces/ns/configmaps/cfg",
        200,
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ns"},
            "data": {"a": "1"}}),
    );
    let before = calls.load(Ordering::SeqCst);
    let got = vm.objects().config_map("ns", "cfg").await.unwrap().unwrap();
    assert_eq!(got.data.as_ref().unwrap()["a"], "1");
    vm.objects().config_map("ns", "cfg").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
    assert!(vm
        .objects()
        .config_map("ns", "other")
        .await
        .unwrap()
        .is_none());

    // Projected serviceAccountToken: skipped while the server lacks the
    // subresource, written once it serves tokens.
    let projected = Volume {
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(
                        k8s_openapi::api::core::v1::ServiceAccountTokenProjection {
                            path: "token".into(),
                            audience: Some("api".into()),
                            expiration_seconds: Some(3600),
                        },
                    ),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "cfg".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            default_mode: Some(0o644),
        }),
        ..vol("kube-api-access")
    };
    let p = pod(vec![projected.clone()], vec![]);
    vm.setup(&p).await.unwrap();
    let dir = tmp
        .path()
        .join("pods/uid-1/volumes/kubernetes.io~projected/kube-api-access");
    assert_eq!(read(dir.join("a")), "1");
    assert!(!dir.join("token").exists());

    let mut p2 = pod(vec![projected], vec![]);
    p2.metadata.uid = Some("uid-2".into());
    let vm2 = VolumeManager::new(
        tmp.path().join("pods"),
        fake_api::client(routes.clone(), calls.clone()),
        "cluster.local".into(),
    )
    .with_memory_backed_volumes(false);
    route(
        &routes,
        "POST",
        "/api/v1/namespaces/ns/serviceaccounts/default/token",
        201,
        serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["api"], "expirationSeconds": 3600},
            "status": {"token": "eyJ.fake.jwt", "expirationTimestamp": "2030-01-01T00:00:00Z"}}),
    );
    vm2.setup(&p2).await.unwrap();
    let dir2 = tmp
        .path()
        .join("pods/uid-2/volumes/kubernetes.io~projected/kube-api-access");
    assert_eq!(read(dir2.join("token")), "eyJ.fake.jwt");
    let before = calls.load(Ordering::SeqCst);
    vm2.setup(&p2).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "token reused, configMap cached"
    );
}
