#include "vm/launch_plan.h"

namespace ferry::vm {

namespace {

LaunchShape CloneShape(const CloneLaunch& c) {
  LaunchShape s;
  s.operation = "clone";
  s.ram = RamSource::kSnapshotImage;
  s.ram_image = c.ram_image;
  s.new_identity = true;
  s.mac = c.mac;
  s.vmgenid = c.vmgenid;
  s.disk_chain = c.disk_chain;
  s.origin = c.origin;
  s.restore = &c.restore;
  return s;
}

struct ShapeVisitor {
  LaunchShape operator()(const BootLaunch&) const { return LaunchShape{}; }
  LaunchShape operator()(const CloneLaunch& c) const { return CloneShape(c); }
  LaunchShape operator()(const PooledCloneLaunch& p) const {
    LaunchShape s = CloneShape(p.clone);
    s.prelaunched = &p.qemu;
    return s;
  }
  LaunchShape operator()(const IncomingMigrationLaunch& m) const {
    LaunchShape s;
    s.operation = "migrate-in";
    s.mac = m.mac;
    s.vmgenid = m.vmgenid;
    s.origin = m.origin;
    s.restore = &m.restore;
    s.restore_cause = "the migration";
    return s;
  }
  LaunchShape operator()(const HoldRestoreLaunch& h) const {
    LaunchShape s;
    s.operation = "restore";
    s.mac = h.mac;
    s.vmgenid = h.vmgenid;
    s.disk_chain = h.disk_chain;
    s.origin = h.origin;
    s.restore = &h.restore;
    s.restore_cause = "the restore";
    s.is_held_vm = true;
    return s;
  }
};

}  // namespace

LaunchShape ShapeOf(const LaunchPlan& plan) { return std::visit(ShapeVisitor{}, plan); }

}  // namespace ferry::vm
