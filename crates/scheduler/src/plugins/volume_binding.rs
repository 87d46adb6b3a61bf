//! VolumeBinding: the place in the profile where a pod's
//! PersistentVolumeClaims (`spec.volumes[].persistentVolumeClaim`) will be
//! checked: that each claim exists, is bound or can be bound to a volume
//! reachable from the node (node affinity of the PV, WaitForFirstConsumer
//! classes). There is no PVC/PV informer yet, so every pod passes; the
//! checks come with storage, keeping the filter order upstream's.

use crate::framework::Plugin;

pub const NAME: &str = "VolumeBinding";

pub struct VolumeBinding;

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
}
