#!/usr/bin/env python3
"""The drawing page in a real browser: headless Chromium driven by WebDriver (python3-selenium and
chromium-driver) draws the strokes of a 7 and of a 0 on the canvas, like a mouse would, and reads the
prediction, the ten probabilities and the 28x28 image from the page. Keeps a screenshot.
    test_browser.py SYNAPSE RUN SCREENSHOT.png
Prints "browser: skipped" (and passes) only when chromium, chromedriver or selenium is missing."""
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Server  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    # Debian's python3-selenium belongs to /usr/bin/python3, which may not be the python3 on PATH (pyenv).
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    print("browser: skipped: python3-selenium is not installed (scripts/setup installs it)")
    sys.exit(0)


def find(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def draw(driver, pad, strokes):
    """Each stroke is a list of (x, y) canvas points (0..280); drawn with pointer down, moves, up."""
    w = pad.size["width"]
    for stroke in strokes:
        a = ActionChains(driver, duration=10)
        x0, y0 = stroke[0]
        # Offsets are from the element's centre.
        a.move_to_element_with_offset(pad, int(x0 * w / 280 - w / 2), int(y0 * w / 280 - w / 2)).click_and_hold()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            a.move_by_offset(int(round((xb - xa) * w / 280)), int(round((yb - ya) * w / 280)))
        a.release().perform()


def settled(driver):
    """Waits until no request is in flight and returns (prediction text, probabilities, image pixels set)."""
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "prediction").get_attribute("data-state") == "idle"
        and d.find_element(By.ID, "prediction").text.strip() not in ("", "?"))
    pred = driver.find_element(By.ID, "prediction").text.strip()
    probs = [float(driver.find_element(By.ID, f"p{d}").text) for d in range(10)]
    lit = driver.execute_script(
        "const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) ++n; return n;")
    return pred, probs, lit


def main():
    synapse, run, screenshot = sys.argv[1:4]
    chromium = find("chromium", "chromium-browser", "google-chrome")
    chromedriver = find("chromedriver")
    if not chromium or not chromedriver:
        print(f"browser: skipped: {'chromium' if not chromium else 'chromedriver'} is not installed "
              "(apt-get install chromium chromium-driver)")
        return 0
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    failures = []
    profile = tempfile.mkdtemp(prefix="synapse-chromium-")
    with Server(synapse, run) as s:
        o = webdriver.ChromeOptions()
        o.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--window-size=1100,700",
                     f"--user-data-dir={profile}", "--disable-dev-shm-usage"):
            o.add_argument(flag)
        driver = webdriver.Chrome(service=Service(chromedriver), options=o)
        try:
            driver.get(s.url)
            pad = driver.find_element(By.ID, "pad")
            # A 7: the bar, then the long diagonal.
            draw(driver, pad, [[(70, 60), (130, 58), (210, 60)], [(210, 60), (180, 120), (150, 180), (125, 240)]])
            pred, probs, lit = settled(driver)
            print(f"drew a 7: the page reads {pred}; probabilities {probs}; {lit} bright pixels in the 28x28 image")
            if pred != "7":
                failures.append(f"the 7 was read as {pred}")
            if abs(sum(probs) - 1) > 0.02 or max(probs) != probs[7]:
                failures.append(f"probabilities {probs}: they should sum to 1 with 7 the largest")
            if lit < 20:
                failures.append(f"the 28x28 image shows only {lit} bright pixels")
            driver.save_screenshot(screenshot)
            # Clear, then a 0: an ellipse.
            driver.find_element(By.ID, "clear").click()
            if driver.find_element(By.ID, "prediction").text.strip() != "":
                failures.append("Clear left a prediction on the page")
            ring = [(140 + 60 * math.sin(t / 16 * 2 * math.pi), 140 - 95 * math.cos(t / 16 * 2 * math.pi)) for t in range(17)]
            draw(driver, pad, [ring])
            pred0, probs0, _ = settled(driver)
            print(f"drew a 0: the page reads {pred0}; probabilities {probs0}")
            if pred0 != "0":
                failures.append(f"the 0 was read as {pred0}")
            errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            if errors:
                failures.append(f"console errors: {errors}")
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f)
    print("browser: " + ("passed" if not failures else "FAILED") + f"; screenshot {screenshot}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
