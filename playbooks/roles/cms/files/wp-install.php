<?php
// Installs WordPress once: tables, options and the admin user. Prints `installed` when it did
// the work and `present` when the site already existed (then nothing is touched: the admin
// password belongs to the ministry from the first login on). Reads everything from
// TONLE_WP_* environment variables so no secret appears on a command line.
// Run by the cms role (Debian has no wp-cli); exits non-zero with the reason on stderr.

function need(string $name): string {
    $value = getenv($name);
    if ($value === false || $value === '') {
        fwrite(STDERR, "missing environment variable $name\n");
        exit(2);
    }
    return $value;
}

$url = need('TONLE_WP_URL');
$_SERVER['HTTP_HOST'] = need('TONLE_WP_DOMAIN');
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['HTTPS'] = 'on';

define('WP_INSTALLING', true);
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if (is_blog_installed()) {
    echo "present\n";
    exit(0);
}

// No mail server here: the new-site notice would only fail. The orchestrator hands the
// credentials to the ministry itself.
add_filter('pre_wp_mail', '__return_false');

$result = wp_install(
    need('TONLE_WP_TITLE'),
    need('TONLE_WP_ADMIN_USER'),
    need('TONLE_WP_ADMIN_EMAIL'),
    true,
    '',
    wp_slash(need('TONLE_WP_ADMIN_PASSWORD')),
    need('TONLE_WP_LOCALE')
);
if (is_wp_error($result) || !is_blog_installed()) {
    fwrite(STDERR, 'wp_install failed: ' . (is_wp_error($result) ? $result->get_error_message() : 'no site after install') . "\n");
    exit(1);
}
update_option('home', $url);
update_option('siteurl', $url);
echo "installed\n";
