//! Every entity can move to another thread (a runtime may run each on its own task).

fn assert_send<T: Send + 'static>() {}

#[test]
fn entities_are_send() {
    assert_send::<cpm_roles::Client>();
    assert_send::<cpm_roles::Participating>();
    assert_send::<cpm_roles::Controlling>();
    assert_send::<cpm_roles::Isf>();
    assert_send::<cpm_roles::Iwf>();
}
