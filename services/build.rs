//! The migrations are embedded by `sqlx::migrate!`, which does not tell cargo to watch them:
//! without this, a new migration file alone would not rebuild the service.
fn main() {
    println!("cargo:rerun-if-changed=../schemas/migrations");
}
